// `cache import` of what is not a good archive: exit codes (missing/folder 2, damaged 1), owners not kept, a size cap
// while unpacking (gzip bomb), and with a signing key only records whose tag verifies. Through the CLI where it is the CLI's job.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fs, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar';
import { checkout, sovereign } from '../support/cli.ts';
import { exportCache, importCache } from '../../lib/store/archive.ts';
import { LocalStore } from '../../lib/store/local.ts';
import { outputHashOf } from '../../lib/store/record.ts';
import type { CacheRecord } from '../../lib/store/store.ts';
import { UserError } from '../../lib/error.ts';

const root = checkout('sovereign-import-hostile-');
test.after(() => rmSync(root, { recursive: true, force: true }));
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A cache dir with one record (one blob); returns the dir. */
async function cacheWithOne(name: string, content = 'bytes'): Promise<string> {
  const dir = join(root, name);
  const store = new LocalStore(dir);
  const f = join(root, `${name}.src`);
  await fs.writeFile(f, content);
  await store.putBlob(sha(content), f);
  const files = [{ name: 'out.img', sha256: sha(content), size: content.length, mode: 0o644 }];
  const rec: CacheRecord = { schema: 1, key: sha(name), task: 'sql:rootfs', files, outputHash: outputHashOf(files, undefined), durationMs: 1, tools: {}, createdAt: new Date().toISOString() };
  await store.putRecord(rec);
  return dir;
}

const records = (dir: string) => (existsSync(join(dir, 'records')) ? readdirSync(join(dir, 'records')) : []);

test('random bytes, an empty file, a truncated archive: exit 1 with a clear error; a folder or a missing file: exit 2', async () => {
  const cases: Array<[string, number]> = [];
  await fs.writeFile(join(root, 'random.tgz'), randomBytes(4096));
  cases.push(['random.tgz', 1]);
  await fs.writeFile(join(root, 'empty.tgz'), '');
  cases.push(['empty.tgz', 1]);
  await exportCache(await cacheWithOne('trunc-src', 'x'.repeat(100_000) + randomBytes(100_000).toString('hex')), join(root, 'whole.tgz'));
  const whole = await fs.readFile(join(root, 'whole.tgz'));
  await fs.writeFile(join(root, 'trunc.tgz'), whole.subarray(0, Math.floor(whole.length / 2)));
  cases.push(['trunc.tgz', 1]);
  await fs.mkdir(join(root, 'folder.tgz'));
  cases.push(['folder.tgz', 2], ['missing.tgz', 2]);
  for (const [file, code] of cases) {
    const r = await sovereign(['cache', 'import', file], { cwd: root });
    assert.is(r.code, code, `${file}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    assert.match(r.stderr, file, `${file}: the error names the file`);
    assert.not.match(r.stderr, /\n\s+at /, `${file}: no stack trace`);
  }
});

test('imported files are not owned by the archive\'s uid, and get 0644', async () => {
  const src = await cacheWithOne('owned-src');
  for (const e of readdirSync(src, { recursive: true, withFileTypes: true })) await fs.chown(join(e.parentPath ?? e.path, e.name), 65534, 65534);
  const file = join(root, 'owned.tgz');
  await tar.c({ gzip: true, file, cwd: src }, ['records', 'blobs']); // not portable: keeps uid 65534
  const dest = join(root, 'owned-dest');
  await importCache(dest, file);
  const got = readdirSync(dest, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name));
  assert.ok(got.length >= 2, 'record and blob imported');
  for (const f of got) {
    const st = await fs.stat(f);
    assert.is(st.uid, process.getuid!(), `${f} owned by us`);
    assert.is(st.mode & 0o7777, 0o644, `${f} is 0644`);
  }
});

test('a gzip bomb stops at the size cap: nothing past it is written', async () => {
  const big = Buffer.alloc(8 * 1024 * 1024); // 8 MiB of zeros: a few KiB gzipped
  const src = join(root, 'bomb-src');
  await fs.mkdir(join(src, 'blobs', sha(big).slice(0, 2)), { recursive: true });
  await fs.writeFile(join(src, 'blobs', sha(big).slice(0, 2), sha(big)), big);
  const file = join(root, 'bomb.tgz');
  await tar.c({ gzip: true, file, cwd: src, portable: true }, ['blobs']);
  assert.ok((await fs.stat(file)).size < 100_000, 'small archive');
  const dest = join(root, 'bomb-dest');
  const err = await importCache(dest, file, { maxBytes: 1024 * 1024 }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
  assert.match((err as Error).message, 'more than 1048576 bytes');
  assert.not.ok(existsSync(join(dest, 'blobs', sha(big).slice(0, 2), sha(big))), 'the big blob was not written');
});

test('with a signing key, import takes only records whose tag verifies; an unsigned (foreign) archive adds no record', async () => {
  const key = 'test-signing-key';
  const src = await cacheWithOne('signed-src');
  await exportCache(src, join(root, 'signed.tgz'), undefined, { signatureKey: key });
  await exportCache(src, join(root, 'unsigned.tgz'));
  const good = join(root, 'signed-dest');
  assert.is((await importCache(good, join(root, 'signed.tgz'), { signatureKey: key })).records, 1);
  const foreign = join(root, 'foreign-dest');
  const r = await importCache(foreign, join(root, 'unsigned.tgz'), { signatureKey: key });
  assert.equal([r.records, r.skippedRecords], [0, 1]);
  assert.equal(records(foreign), []);
  const wrong = join(root, 'wrong-dest');
  assert.is((await importCache(wrong, join(root, 'signed.tgz'), { signatureKey: 'another key' })).records, 0);
  // Through the CLI: the environment's key is used.
  const cli = await sovereign(['cache', 'import', join(root, 'unsigned.tgz'), '--json'], { cwd: root, env: { SOVEREIGN_REMOTE_CACHE_SIGNATURE_KEY: key } });
  assert.is(cli.code, 0, cli.stderr);
  assert.is(JSON.parse(cli.stdout).skippedRecords, 1);
});

test.run();
