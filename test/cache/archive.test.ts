// Portable cache archives: export → import into an empty cache gives identical records and blobs; bad entries are refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import * as tar from 'tar';
import { exportCache, importCache, keysDigest } from '../../lib/store/archive.ts';
import { LocalStore } from '../../lib/store/local.ts';
import type { CacheRecord } from '../../lib/store/store.ts';
import { outputHashOf } from '../../lib/store/record.ts';

let work: string;
test.before(async () => { work = await fs.mkdtemp(join(tmpdir(), `sovereign-archive-test-${process.pid}-`)); });
test.after(async () => { await fs.rm(work, { recursive: true, force: true }); });

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A cache with `n` records of two files each (one blob shared by all records). */
async function filledCache(dir: string, n: number): Promise<{ store: LocalStore; keys: string[] }> {
  const store = new LocalStore(dir);
  const shared = Buffer.from('kernel bytes');
  await fs.writeFile(join(work, 'shared'), shared);
  await store.putBlob(sha(shared), join(work, 'shared'));
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const data = Buffer.concat([Buffer.alloc(4096), randomBytes(4096)]);
    const p = join(work, `f${i}`);
    await fs.writeFile(p, data);
    await store.putBlob(sha(data), p);
    const key = randomBytes(32).toString('hex');
    keys.push(key);
    const files = [{ name: 'rootfs.img', sha256: sha(data), size: data.length, mode: 0o644 }, { name: 'vmlinux', sha256: sha(shared), size: shared.length, mode: 0o644 }];
    const rec: CacheRecord = { schema: 1, key, task: `svc${i}:rootfs`, outputHash: outputHashOf(files, undefined), durationMs: i, tools: {}, createdAt: '2024-01-01T00:00:00.000Z', files };
    await store.putRecord(rec);
  }
  return { store, keys };
}

/** Every file under records/ and blobs/ with its content hash. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p)] = sha(readFileSync(p));
    }
  };
  for (const top of ['records', 'blobs']) { try { walk(join(dir, top)); } catch { /* absent */ } }
  return out;
}

test('export then import into an empty cache: identical records and blobs', async () => {
  const src = join(work, 'src-cache');
  const { keys } = await filledCache(src, 3);
  const file = join(work, 'out', 'cache.tar.gz');
  const exp = await exportCache(src, file);
  assert.equal({ records: exp.records, blobs: exp.blobs, skippedRecords: exp.skippedRecords }, { records: 3, blobs: 4, skippedRecords: 0 });
  assert.ok(exp.bytes > 0);
  const dest = join(work, 'dest-cache');
  const imp = await importCache(dest, file);
  assert.equal(imp, { records: 3, blobs: 4, present: 0, skippedRecords: 0, skippedBlobs: 0 });
  assert.equal(snapshot(dest), snapshot(src));
  assert.equal(readdirSync(join(dest, 'tmp')), [], 'staging removed');
  const store = new LocalStore(dest);
  for (const k of keys) assert.is((await store.getRecord(k))?.key, k);
  // importing again adds nothing and changes nothing
  const again = await importCache(dest, file);
  assert.equal({ records: again.records, blobs: again.blobs, present: again.present }, { records: 0, blobs: 0, present: 7 });
  // the same content exports to the same bytes (a stable CI artifact)
  const file2 = join(work, 'out', 'cache2.tar.gz');
  await exportCache(dest, file2);
  assert.is(sha(readFileSync(file2)), sha(readFileSync(file)));
});

test('export of chosen keys; records whose blobs are missing are left out', async () => {
  const src = join(work, 'partial-cache');
  const { store, keys } = await filledCache(src, 3);
  const rec = (await store.getRecord(keys[2]))!;
  await fs.rm(store.blobPath(rec.files[0].sha256));
  const file = join(work, 'partial.tar.gz');
  const exp = await exportCache(src, file, [keys[0], keys[2], 'f'.repeat(64)]);
  assert.equal({ records: exp.records, blobs: exp.blobs, skippedRecords: exp.skippedRecords }, { records: 1, blobs: 2, skippedRecords: 2 });
  const listed: string[] = [];
  await tar.t({ file, onReadEntry: (e) => { listed.push(e.path); } });
  assert.equal(listed.filter((p) => p.startsWith('records/')), [`records/${keys[0]}.json`]);
});

test('a corrupted blob in the archive is skipped and counted, with the record that needs it', async () => {
  const src = join(work, 'corrupt-src');
  const { store, keys } = await filledCache(src, 2);
  const rec = (await store.getRecord(keys[1]))!;
  const victim = store.blobPath(rec.files[0].sha256);
  const bytes = readFileSync(victim);
  bytes[10] ^= 0xff;
  await fs.writeFile(victim, bytes);
  // a hostile archive entry outside records/ and blobs/, and a malformed record
  await fs.writeFile(join(src, 'records', `${'e'.repeat(64)}.json`), JSON.stringify({ schema: 1, key: 'e'.repeat(64), files: [{ name: '../../etc/passwd' }] }));
  const file = join(work, 'corrupt.tar.gz');
  await tar.c({ gzip: true, file, cwd: src }, ['records', 'blobs']);
  const dest = join(work, 'corrupt-dest');
  const imp = await importCache(dest, file);
  assert.equal(imp, { records: 1, blobs: 2, present: 0, skippedRecords: 2, skippedBlobs: 1 });
  const out = new LocalStore(dest);
  assert.is((await out.getRecord(keys[0]))?.key, keys[0]);
  assert.is(await out.getRecord(keys[1]), undefined);
  assert.is(await out.hasBlob(rec.files[0].sha256), false);
});

test('a truncated archive: what verifies is kept, and the import fails saying so', async () => {
  const src = join(work, 'trunc-src');
  await filledCache(src, 2);
  const file = join(work, 'trunc.tar.gz');
  await exportCache(src, file);
  const whole = readFileSync(file);
  await fs.writeFile(file, whole.subarray(0, Math.floor(whole.length * 0.6)));
  const dest = join(work, 'trunc-dest');
  const imp = await importCache(dest, file).then(() => undefined, (e: unknown) => e);
  assert.ok(imp instanceof Error && /not a complete sovereign cache archive/.test(imp.message), `damage reported: ${String(imp)}`);
  for (const [path, digest] of Object.entries(snapshot(dest))) {
    if (path.startsWith('blobs/')) assert.is(digest, path.split('/')[2], `${path} verified`);
  }
});

test('keysDigest is order- and duplicate-insensitive', () => {
  assert.is(keysDigest(['b', 'a', 'a']), keysDigest(['a', 'b']));
  assert.is.not(keysDigest(['a']), keysDigest(['a', 'b']));
});

test.run();
