// The record index (records.idx): answers a no-op run from one file, yet never vouches for a record the store lost.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { outputHashOf } from '../../lib/store/record.ts';
import { LocalStore } from '../../lib/store/local.ts';
import type { CacheRecord } from '../../lib/store/store.ts';

let dir: string;

function record(key: string, sha = 'a'.repeat(64)): CacheRecord {
  const files = [{ name: 'out.txt', sha256: sha, size: 3, mode: 0o644 }];
  return { schema: 1, key, task: 'svc:step', files, outputHash: outputHashOf(files, null), durationMs: 1, tools: {}, createdAt: new Date(0).toISOString() };
}

/** The folder must look settled (unchanged for 2 s) before an index may vouch for it. */
const settle = () => new Promise((r) => setTimeout(r, 2100));

/** A store that has written and looked up `keys`, and saved its index after the folder settled. */
async function indexed(keys: string[]): Promise<void> {
  const writer = new LocalStore(dir);
  for (const k of keys) await writer.putRecord(record(k));
  await settle();
  const reader = new LocalStore(dir);
  for (const k of keys) assert.ok(await reader.getRecord(k), `${k} readable from its file`);
  await reader.flush();
}

/** Replaces a record file's bytes in place: the folder's times do not move, so only the index can still answer. */
async function scribble(key: string): Promise<void> {
  const h = await fs.open(join(dir, 'records', `${key}.json`), 'r+');
  try { await h.truncate(0); await h.write('{"not": "a record"}'); } finally { await h.close(); }
}

test.before.each(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), `sov-index-${process.pid}-`));
});
test.after.each(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

test('a settled index answers without reading the record files', async () => {
  await indexed(['k1', 'k2']);
  await scribble('k1');
  const r = await new LocalStore(dir).getRecord('k1');
  assert.is(r?.key, 'k1', 'answered from records.idx, not from the scribbled file');
});

test('a record removed after the index was written is not vouched for', async () => {
  await indexed(['k1', 'k2']);
  await fs.rm(join(dir, 'records', 'k1.json'));
  const store = new LocalStore(dir);
  assert.is(await store.getRecord('k1'), undefined);
  assert.ok(await store.getRecord('k2'), 'the other record is still found (from its file)');
});

test('a record evicted by another store instance (cache gc, verify) is not vouched for', async () => {
  await indexed(['k1']);
  await new LocalStore(dir).evict('k1');
  assert.is(await new LocalStore(dir).getRecord('k1'), undefined);
});

test('an index written while the folder was still changing is not trusted', async () => {
  const store = new LocalStore(dir);
  await store.putRecord(record('k1'));
  assert.ok(await store.getRecord('k1'));
  await store.flush(); // the folder changed just now: its times could still change without moving
  await scribble('k1');
  assert.is(await new LocalStore(dir).getRecord('k1'), undefined, 'read (and rejected) the file itself');
});

test('a damaged index is ignored', async () => {
  await indexed(['k1']);
  const file = join(dir, 'records.idx');
  const text = await fs.readFile(file, 'utf8');
  await fs.writeFile(file, text.replace('svc:step', 'svc:stop'));
  await scribble('k1');
  assert.is(await new LocalStore(dir).getRecord('k1'), undefined);
});

test('an index saved after its own store evicted a record does not bring it back', async () => {
  await indexed(['k1', 'k2']);
  const store = new LocalStore(dir);
  assert.ok(await store.getRecord('k1'));
  await store.evict('k1');
  await store.flush();
  await settle();
  assert.is(await new LocalStore(dir).getRecord('k1'), undefined);
});

test('a record replaced in place by the same store (--force) is answered with its new content', async () => {
  await indexed(['k1']);
  const store = new LocalStore(dir);
  const next = record('k1', 'b'.repeat(64));
  await store.putRecord(next);
  assert.is((await store.getRecord('k1'))?.outputHash, next.outputHash);
});

test.run();
