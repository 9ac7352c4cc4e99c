// `sovereign cache ls | verify | gc | export | import` on a real local store, through the CLI.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fs, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { checkout, sovereign } from '../support/cli.ts';
import { LocalStore } from '../../lib/store/local.ts';
import type { CacheRecord } from '../../lib/store/store.ts';
import { outputHashOf } from '../../lib/store/record.ts';

const root = checkout('sovereign-cachecli-');
const store = new LocalStore(join(root, '.sovereign/cache'));

async function seed(task: string, content: string, key: string): Promise<CacheRecord> {
  const file = join(root, `${key}.tmp`);
  await fs.writeFile(file, content);
  const sha = createHash('sha256').update(content).digest('hex');
  await store.putBlob(sha, file);
  await fs.rm(file);
  const files = [{ name: 'out.img', sha256: sha, size: content.length, mode: 0o644 }];
  const rec: CacheRecord = { schema: 1, key, task, files, outputHash: outputHashOf(files, undefined), durationMs: 5, tools: {}, createdAt: new Date().toISOString() };
  await store.putRecord(rec);
  return rec;
}

test('an empty cache exports an archive that imports as nothing (no exit 70)', async () => {
  const empty = checkout('sovereign-cachecli-empty-');
  const file = join(empty, 'empty.tgz');
  const e = await sovereign(['cache', 'export', file], { cwd: empty });
  assert.is(e.code, 0, e.stderr);
  assert.match(e.stdout, /exported: \{"records":0,/);
  const other = checkout('sovereign-cachecli-empty-import-');
  const i = await sovereign(['cache', 'import', file], { cwd: other });
  assert.is(i.code, 0, i.stderr);
  assert.is(JSON.parse((await sovereign(['cache', 'ls', '--json'], { cwd: other })).stdout).length, 0);
  rmSync(empty, { recursive: true, force: true });
  rmSync(other, { recursive: true, force: true });
});

test('ls lists records (text and --json)', async () => {
  await seed('sql:rootfs', 'a'.repeat(3000), 'k1'.padEnd(64, '0'));
  await seed('forge:rootfs', 'b'.repeat(5000), 'k2'.padEnd(64, '0'));
  const r = await sovereign(['cache', 'ls'], { cwd: root });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /forge:rootfs\s+k20000000000\s+5000 B/);
  assert.match(r.stdout, /sql:rootfs/);
  const j = JSON.parse((await sovereign(['cache', 'ls', '--json'], { cwd: root })).stdout);
  assert.is(j.length, 2);
});

test('verify finds a corrupt blob, evicts it and its record, exits 1', async () => {
  const bad = await seed('vault:rootfs', 'c'.repeat(100), 'k3'.padEnd(64, '0'));
  await fs.writeFile(store.blobPath(bad.files[0].sha256), 'tampered');
  const r = await sovereign(['cache', 'verify'], { cwd: root });
  assert.is(r.code, 1);
  assert.match(r.stdout, /3 records, 3 blobs checked; 1 corrupt/);
  assert.is(await store.getRecord(bad.key), undefined);
  const again = await sovereign(['cache', 'verify'], { cwd: root });
  assert.is(again.code, 0);
});

test('export and import move the cache to another checkout', async () => {
  const file = join(root, 'cache.tgz');
  const e = await sovereign(['cache', 'export', file], { cwd: root });
  assert.is(e.code, 0, e.stderr);
  const other = checkout('sovereign-cachecli-import-');
  const i = await sovereign(['cache', 'import', file], { cwd: other });
  assert.is(i.code, 0, i.stderr);
  const ls = JSON.parse((await sovereign(['cache', 'ls', '--json'], { cwd: other })).stdout);
  assert.equal(ls.map((x: CacheRecord) => x.task).sort(), ['forge:rootfs', 'sql:rootfs']);
  rmSync(other, { recursive: true, force: true });
});

test('gc --max-size keeps the newest records that fit', async () => {
  const noSize = await sovereign(['cache', 'gc'], { cwd: root });
  assert.is(noSize.code, 2);
  assert.match(noSize.stderr, /--max-size/);
  // make sql:rootfs the most recently used
  const later = new Date(Date.now() + 60_000);
  await fs.utimes(store.recordPath('k1'.padEnd(64, '0')), later, later);
  const r = await sovereign(['cache', 'gc', '--max-size', '4000B'], { cwd: root });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /removed 1 records/);
  const left = JSON.parse((await sovereign(['cache', 'ls', '--json'], { cwd: root })).stdout);
  assert.equal(left.map((x: CacheRecord) => x.task), ['sql:rootfs']);
});

test('gc sizes are whole numbers with a unit: banana, a bare 5 and 1.5G are usage errors that remove nothing', async () => {
  for (const size of ['banana', '5', '0', '1.5G']) {
    const r = await sovereign(['cache', 'gc', '--max-size', size], { cwd: root });
    assert.is(r.code, 2, size);
    assert.match(r.stderr, new RegExp(`--max-size '${size}' is not a whole number with a unit`), size);
  }
  assert.is(JSON.parse((await sovereign(['cache', 'ls', '--json'], { cwd: root })).stdout).length, 1);
});

test('gc that would empty the cache asks first: refused without a terminal, done with --yes', async () => {
  const asked = await sovereign(['cache', 'gc', '--max-size', '0B'], { cwd: root });
  assert.is(asked.code, 2);
  assert.match(asked.stderr, /removes all 1 records: empty the cache\?/);
  assert.match(asked.stderr, /--yes/);
  assert.is(JSON.parse((await sovereign(['cache', 'ls', '--json'], { cwd: root })).stdout).length, 1);
  const yes = await sovereign(['cache', 'gc', '--max-size', '0B', '--yes'], { cwd: root });
  assert.is(yes.code, 0, yes.stderr);
  assert.match((await sovereign(['cache', 'ls'], { cwd: root })).stdout, /the cache is empty/);
});

test('gc --wait bounds the wait for another run\'s lock', async () => {
  const holder = spawn('sleep', ['60']);
  await fs.writeFile(join(root, '.sovereign', 'lock'), JSON.stringify({ pid: holder.pid, since: new Date().toISOString(), token: 'held' }));
  try {
    const started = Date.now();
    const r = await sovereign(['cache', 'gc', '--max-size', '1G', '--wait', '1'], { cwd: root, signal: AbortSignal.timeout(60_000) });
    assert.is(r.code, 5, r.stderr);
    assert.match(r.stderr, /another sovereign run is in progress/);
    assert.ok(Date.now() - started < 30_000);
  } finally {
    holder.kill();
    await fs.rm(join(root, '.sovereign', 'lock'), { force: true });
  }
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
