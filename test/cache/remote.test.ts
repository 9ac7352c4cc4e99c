// The remote store against a real turborepo-remote-cache server: round trips, sharing, outages, tampering, signing, modes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { RemoteStore, remoteOptions, type RemoteStoreOptions } from '../../lib/store/remote.ts';
import { recordArtifactId } from '../../lib/store/remote-signing.ts';
import { createStore } from '../../lib/store/tiered.ts';
import type { CacheRecord } from '../../lib/store/store.ts';
import { startCacheServer, type CacheServer } from '../support/cache-server.ts';
import { outputHashOf } from '../../lib/store/record.ts';

const TEAM = 'ci';
let server: CacheServer;
let work: string;

test.before(async () => {
  work = await fs.mkdtemp(join(tmpdir(), `sovereign-remote-test-${process.pid}-`));
  server = await startCacheServer();
});
test.after(async () => {
  await server?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A file like a small disk image: zeros then random bytes. */
async function blobFile(name: string, size = 3 * 1024 * 1024): Promise<{ path: string; sha256: string; size: number; data: Buffer }> {
  const data = Buffer.concat([Buffer.alloc(size / 2), randomBytes(size / 2)]);
  const path = join(work, name);
  await fs.writeFile(path, data);
  return { path, sha256: sha(data), size, data };
}

function record(key: string, file: { sha256: string; size: number }): CacheRecord {
  const files = [{ name: 'rootfs.img', sha256: file.sha256, size: file.size, mode: 0o644 }];
  return { schema: 1, key, task: 'sql:rootfs', files, outputHash: outputHashOf(files, undefined), durationMs: 1234, tools: { mke2fs: '1.47.0' }, createdAt: new Date().toISOString() };
}

function remote(over: Partial<RemoteStoreOptions> & { warnings?: string[] } = {}, s = server): RemoteStore {
  const warnings = over.warnings ?? [];
  return new RemoteStore({ url: s.url, token: s.token, team: TEAM, mode: 'read-write', retryDelayMs: 20, tmpDir: work, onWarning: (m) => warnings.push(m), ...over });
}

const newKey = () => randomBytes(32).toString('hex');
const storedFiles = (s: CacheServer) => readdirSync(join(s.storagePath, TEAM), { withFileTypes: true }).filter((d) => d.isFile()).length;

test('record and blob round trip through the server, compressed', async () => {
  const warnings: string[] = [];
  const r = remote({ warnings });
  const blob = await blobFile('a.img');
  const key = newKey();
  const seen: number[] = [];
  const rec = record(key, blob);
  assert.ok(await r.putBlob(blob.sha256, blob.path, (done, total) => seen.push(done / total)));
  assert.ok(await r.putRecord(rec));
  assert.equal(await r.getRecord(key), rec);
  assert.ok(await r.hasBlob(blob.sha256));
  const dest = join(work, 'out', 'a.img');
  const progress: number[] = [];
  assert.ok(await r.fetchBlob(blob.sha256, blob.size, dest, (d) => progress.push(d)));
  assert.ok((await fs.readFile(dest)).equals(blob.data));
  assert.is(progress.at(-1), blob.size);
  assert.is(seen.at(-1), 1);
  // stored gzip-compressed (the zero half shrinks), under the blob's own sha256 and the record's derived id
  const stored = await fs.readFile(join(server.storagePath, TEAM, blob.sha256));
  assert.is(stored[0], 0x1f);
  assert.ok(stored.length < blob.size * 0.6, `stored ${stored.length} bytes`);
  assert.ok(statSync(join(server.storagePath, TEAM, recordArtifactId(key))).isFile());
  assert.equal(await r.getRecord(newKey()), undefined); // a plain miss is not a warning
  assert.equal(warnings, []);
});

test('a second checkout gets the record and the blob; blobs are uploaded once', async () => {
  const warnings: string[] = [];
  const config = { cache: { dir: '.sovereign/cache', remote: { url: server.url, team: TEAM, mode: 'read-write' as const } } };
  const env = { SOVEREIGN_REMOTE_CACHE_TOKEN: server.token };
  const a = join(work, 'checkout-a');
  const b = join(work, 'checkout-b');
  const blob = await blobFile('shared.img');
  const key = newKey();
  const storeA = createStore(config, { root: a, onWarning: (m) => warnings.push(m), env });
  assert.ok(await storeA.putBlob(blob.sha256, blob.path));
  assert.ok(await storeA.putRecord(record(key, blob)));

  const artifact = join(server.storagePath, TEAM, blob.sha256);
  const old = new Date('2001-01-01T00:00:00Z');
  await fs.utimes(artifact, old, old);

  const storeB = createStore(config, { root: b, onWarning: (m) => warnings.push(m), env });
  assert.is(storeB.name, 'local+remote');
  const rec = await storeB.getRecord(key);
  assert.is(rec?.outputHash, record(key, blob).outputHash);
  assert.ok(statSync(join(b, '.sovereign/cache/records', `${key}.json`)).isFile(), 'remote hit kept locally');
  const dest = join(b, 'out', 'rootfs.img');
  assert.ok(await storeB.fetchBlob(blob.sha256, blob.size, dest));
  assert.ok((await fs.readFile(dest)).equals(blob.data));
  assert.ok(await storeB.local.hasBlob(blob.sha256), 'downloaded blob kept in the local store');
  // B builds the same bytes: HEAD says the server has them, nothing is sent again
  assert.ok(await storeB.putBlob(blob.sha256, dest));
  assert.is(statSync(artifact).mtimeMs, old.getTime());
  assert.equal(warnings, []);
});

test('server stopped mid-run: misses, exactly one warning, local cache still answers', async () => {
  const own = await startCacheServer();
  try {
    const warnings: string[] = [];
    const env = { SOVEREIGN_REMOTE_CACHE_TOKEN: own.token };
    const store = createStore({ cache: { dir: join(work, 'down-cache'), remote: { url: own.url, team: TEAM, mode: 'read-write' } } }, { root: work, onWarning: (m) => warnings.push(m), env });
    const blob = await blobFile('down.img');
    const key = newKey();
    assert.ok(await store.putBlob(blob.sha256, blob.path));
    assert.ok(await store.putRecord(record(key, blob)));
    await own.kill();
    const started = Date.now();
    assert.is(await store.getRecord(newKey()), undefined);
    assert.is(await store.hasBlob(sha(randomBytes(8))), false);
    assert.is(await store.fetchBlob(sha(randomBytes(8)), 10, join(work, 'nothing')), false);
    const other = await blobFile('down2.img', 1024);
    assert.ok(await store.putBlob(other.sha256, other.path), 'local put still succeeds');
    assert.ok(await store.putRecord(record(newKey(), other)));
    assert.is((await store.getRecord(key))?.key, key, 'local hit');
    assert.ok(await store.fetchBlob(blob.sha256, blob.size, join(work, 'down-out.img')));
    assert.is(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], /ECONNREFUSED/);
    assert.match(warnings[0], /local cache only/);
    assert.ok(Date.now() - started < 10_000, 'gave up quickly');
  } finally {
    await own.stop();
  }
});

test('a record is not shared while the server lacks one of its blobs', async () => {
  const warnings: string[] = [];
  const store = createStore({ cache: { dir: join(work, 'partial-cache'), remote: { url: server.url, team: TEAM, mode: 'read-write', maxUploadSize: '16K' } } },
    { root: work, onWarning: (m) => warnings.push(m), env: { SOVEREIGN_REMOTE_CACHE_TOKEN: server.token } });
  const big = await blobFile('partial.img', 1024 * 1024);
  const key = newKey();
  assert.ok(await store.putBlob(big.sha256, big.path), 'stored locally');
  assert.ok(await store.putRecord(record(key, big)), 'stored locally');
  assert.match(warnings.join('\n'), /maxUploadSize/);
  assert.is(await remote().getRecord(key), undefined, 'no dangling record on the server');
});

test('a tampered artifact is rejected by the sha256 check', async () => {
  const warnings: string[] = [];
  const r = remote({ warnings });
  const blob = await blobFile('tamper.img', 64 * 1024);
  assert.ok(await r.putBlob(blob.sha256, blob.path));
  const bad = Buffer.from(blob.data);
  bad[100] ^= 0xff;
  await fs.writeFile(join(server.storagePath, TEAM, blob.sha256), gzipSync(bad));
  const outDir = join(work, 'tamper-out');
  assert.is(await r.fetchBlob(blob.sha256, blob.size, join(outDir, 'x.img')), false);
  assert.equal(readdirSync(outDir), [], 'no file, no temp left behind');
  assert.is(warnings.length, 1);
  assert.match(warnings[0], /sha256 mismatch/);
  // garbage that is not even gzip: rejected too, and the store keeps working
  await fs.writeFile(join(server.storagePath, TEAM, blob.sha256), randomBytes(500));
  assert.is(await r.fetchBlob(blob.sha256, blob.size, join(outDir, 'x.img')), false);
  assert.match(warnings[1], /gzip/);
  assert.ok(r.available);
});

test('a record claiming more bytes than the disk holds: refused before anything is written, one warning', async () => {
  const warnings: string[] = [];
  const r = remote({ warnings });
  const blob = await blobFile('claim.img', 64 * 1024);
  assert.ok(await r.putBlob(blob.sha256, blob.path));
  const outDir = join(work, 'claim-out');
  const { bavail, bsize } = await fs.statfs(work);
  // An unsigned remote (or a hostile one) can say any size; the download would only stop at what it said.
  assert.is(await r.fetchBlob(blob.sha256, bavail * bsize, join(outDir, 'x.img')), false);
  assert.equal(readdirSync(outDir), [], 'no file, no temp');
  assert.is(warnings.length, 1);
  assert.match(warnings[0], /claims \d+ bytes, more than the \d+ that fit/);
  assert.ok(await r.fetchBlob(blob.sha256, blob.size, join(outDir, 'x.img')), 'the true size is fetched');
  assert.ok(r.available, 'the store keeps working');
});

test('with signing on, unsigned and mis-signed artifacts are rejected', async () => {
  const signed = await startCacheServer({ keepSignatures: true });
  try {
    const warnings: string[] = [];
    const good = remote({ warnings, signatureKey: 'right-key' }, signed);
    const wrong = remote({ warnings: [], signatureKey: 'wrong-key' }, signed);
    const blob = await blobFile('signed.img', 256 * 1024);
    const key = newKey();
    assert.ok(await good.putBlob(blob.sha256, blob.path));
    assert.ok(await good.putRecord(record(key, blob)));
    assert.ok(await good.fetchBlob(blob.sha256, blob.size, join(work, 'signed-out.img')), 'signed round trip');
    assert.is((await good.getRecord(key))?.key, key);
    assert.equal(warnings, []);

    // uploaded with another key: the tag does not verify
    const evil = await blobFile('evil.img', 1024);
    const evilKey = newKey();
    assert.ok(await wrong.putBlob(evil.sha256, evil.path));
    assert.ok(await wrong.putRecord(record(evilKey, evil)));
    assert.is(await good.fetchBlob(evil.sha256, evil.size, join(work, 'evil-out.img')), false);
    assert.is(await good.getRecord(evilKey), undefined);
    assert.is(warnings.length, 2);
    for (const w of warnings) assert.match(w, /signature mismatch/);

    // content swapped on the server under a valid tag: signature (and sha256) catch it
    const stored = join(signed.storagePath, TEAM, blob.sha256);
    await fs.writeFile(stored, gzipSync(Buffer.alloc(blob.size)));
    assert.is(await good.fetchBlob(blob.sha256, blob.size, join(work, 'swap-out.img')), false);
    assert.match(warnings[2], /signature mismatch/);
  } finally {
    await signed.stop();
  }
  // a server that drops tags (no signature key of its own): what comes back is unsigned
  const warnings: string[] = [];
  const unsignedWriter = remote();
  const reader = remote({ warnings, signatureKey: 'right-key' });
  const blob = await blobFile('unsigned.img', 1024);
  assert.ok(await unsignedWriter.putBlob(blob.sha256, blob.path));
  assert.is(await reader.fetchBlob(blob.sha256, blob.size, join(work, 'unsigned-out.img')), false);
  assert.is(warnings.length, 1);
  assert.match(warnings[0], /unsigned/);
});

test('read-only mode uploads nothing', async () => {
  const warnings: string[] = [];
  const before = storedFiles(server);
  const r = remote({ warnings, mode: 'read' });
  const blob = await blobFile('ro.img', 4096);
  assert.is(await r.putBlob(blob.sha256, blob.path), false);
  assert.is(await r.putRecord(record(newKey(), blob)), false);
  // the --remote-cache=read flag beats a read-write config; the local half still stores
  const store = createStore({ cache: { dir: join(work, 'ro-cache'), remote: { url: server.url, team: TEAM, mode: 'read-write' } } },
    { root: work, onWarning: (m) => warnings.push(m), env: { TURBO_TOKEN: server.token }, remoteMode: 'read' });
  assert.ok(await store.putBlob(blob.sha256, blob.path));
  assert.ok(await store.putRecord(record(newKey(), blob)));
  assert.ok(await store.local.hasBlob(blob.sha256));
  assert.is(storedFiles(server), before);
  assert.equal(warnings, []);
});

test('a server that refuses uploads (403) is still read, with one warning', async () => {
  const ro = await startCacheServer({ readOnly: true });
  try {
    const warnings: string[] = [];
    const r = remote({ warnings }, ro);
    const seeded = await blobFile('ro-seed.img', 4096);
    await fs.mkdir(join(ro.storagePath, TEAM), { recursive: true });
    await fs.writeFile(join(ro.storagePath, TEAM, seeded.sha256), gzipSync(seeded.data)); // put there by a trusted writer
    const blob = await blobFile('ro-new.img', 4096);
    assert.is(await r.putBlob(blob.sha256, blob.path), false);
    assert.is(await r.putRecord(record(newKey(), blob)), false);
    assert.ok(await r.fetchBlob(seeded.sha256, seeded.size, join(work, 'ro-out.img')));
    assert.is(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], /does not accept uploads/);
    assert.ok(r.available);
  } finally {
    await ro.stop();
  }
});

test('wrong token: a warning, a miss, then no more requests', async () => {
  const warnings: string[] = [];
  const r = remote({ warnings, token: 'not-the-token' });
  assert.is(await r.getRecord(newKey()), undefined);
  assert.is(await r.fetchBlob(sha(randomBytes(4)), 4, join(work, 'wt.img')), false);
  const blob = await blobFile('wt.img', 1024);
  assert.is(await r.putBlob(blob.sha256, blob.path), false);
  assert.is(warnings.length, 1);
  assert.match(warnings[0], /401/);
  assert.not.match(warnings[0], /not-the-token/);
  assert.is(r.available, false);
});

test('uploads above maxUploadSize are skipped with a warning', async () => {
  const warnings: string[] = [];
  const r = remote({ warnings, maxUploadSize: 64 * 1024 });
  const blob = await blobFile('big.img', 1024 * 1024);
  assert.is(await r.putBlob(blob.sha256, blob.path), false);
  assert.match(warnings[0], /maxUploadSize/);
  assert.is(await r.hasBlob(blob.sha256), false);
  assert.is(await r.putBlob(sha(randomBytes(4)), join(work, 'no-such-file')), false, 'an unreadable file is a warning, not a throw');
  assert.match(warnings[1], /cannot read/);
  assert.equal(readdirSync(work).filter((n) => n.startsWith('upload-')), [], 'staging cleaned up');
});

test('options: token only from env, env overrides config, mode flag, missing token or key', () => {
  const cfg = { url: 'http://127.0.0.1:1', team: 'cfg-team', mode: 'read-write' as const };
  assert.equal(remoteOptions(cfg, {}).options, undefined);
  assert.match(remoteOptions(cfg, {}).reason ?? '', /no token/);
  const o = remoteOptions(cfg, { TURBO_TOKEN: 't', TURBO_API: 'http://127.0.0.1:2', TURBO_TEAM: 'env-team' }).options!;
  assert.is(o.url, 'http://127.0.0.1:2');
  assert.is(o.team, 'env-team');
  assert.is(o.token, 't');
  assert.is(remoteOptions(cfg, { SOVEREIGN_REMOTE_CACHE_TOKEN: 's', TURBO_TOKEN: 't' }).options?.token, 's');
  assert.is(remoteOptions(cfg, { TURBO_TOKEN: 't' }, 'read').options?.mode, 'read');
  assert.equal(remoteOptions(cfg, { TURBO_TOKEN: 't' }, 'off'), {});
  assert.equal(remoteOptions(undefined, { TURBO_TOKEN: 't' }), {});
  assert.match(remoteOptions({ ...cfg, signature: true }, { TURBO_TOKEN: 't' }).reason ?? '', /no key/);
  assert.is(remoteOptions(cfg, { TURBO_TOKEN: 't', TURBO_REMOTE_CACHE_SIGNATURE_KEY: 'k' }).options?.signatureKey, 'k');
});

test.run();
