// The stat cache: file hashes and folder listings remembered between runs, and never trusted past a change.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, flatJson, hashDir, sha256, StatCache } from '../../lib/hash.ts';

const root = mkdtempSync(join(tmpdir(), 'sovereign-stat-cache-'));
const ctx = join(root, 'ctx');
const file = join(root, 'stat-cache.json');
mkdirSync(ctx);
writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\n');
writeFileSync(join(ctx, 'init.sh'), 'echo hi\n');

const settle = () => new Promise((r) => setTimeout(r, 2100)); // only changes older than 2 s are remembered
const fresh = () => new StatCache(file);
const hash = () => hashDir(ctx, fresh(), '.dockerignore');

test('flat key parts serialise exactly as canonicalJson does, escapes included', () => {
  const parts = Object.assign(Object.create(null) as Record<string, string>, { step: 'x@1', 'config.a"b': 'q"\\\n', schema: '2', 'dep:svc42:image': 'ab', 'file:vm/ü/init.sh': '\ud800' });
  assert.is(flatJson(parts), canonicalJson(parts));
  assert.is(flatJson(Object.create(null)), '{}');
});

test('a remembered listing follows every change to the folder: add, remove, rename, in the same second', async () => {
  await settle();
  const first = fresh();
  const before = await hashDir(ctx, first, '.dockerignore');
  await first.save();
  assert.is(await hash(), before, 'unchanged folder, same hash from the saved listing');
  writeFileSync(join(ctx, 'extra.conf'), 'x\n');
  const added = await hash();
  assert.is.not(added, before, 'a new file counts at once');
  renameSync(join(ctx, 'extra.conf'), join(ctx, 'other.conf'));
  const renamed = await hash();
  assert.is.not(renamed, added, 'a rename counts');
  unlinkSync(join(ctx, 'other.conf'));
  assert.is(await hash(), before, 'removed again: the first hash');
  writeFileSync(join(ctx, '.dockerignore'), 'notes\n');
  assert.is.not(await hash(), before, 'an ignore file that appears is read');
  rmSync(join(ctx, '.dockerignore'));
});

test('a folder listed just after a change is not remembered (the next change may keep its times)', async () => {
  writeFileSync(join(ctx, 'new.txt'), '1\n');
  const c = fresh();
  c.list(ctx);
  await c.save();
  const saved = JSON.parse(readFileSync(file, 'utf8')) as { lists: Record<string, string> };
  assert.not.ok(saved.lists[ctx]?.includes('new.txt'), 'not remembered');
  rmSync(join(ctx, 'new.txt'));
});

test('a stat cache saved before listings were remembered keeps its file hashes', async () => {
  await settle();
  const path = join(ctx, 'init.sh');
  const c = new StatCache();
  const h = await c.hashFile(path);
  assert.is(h, sha256('echo hi\n'));
  // The old format: path -> entry, with no listings; a poisoned hash shows whether the entry is still used.
  const { statSync } = await import('node:fs');
  const st = statSync(path, { bigint: true });
  writeFileSync(file, JSON.stringify({ [path]: [String(st.size), String(st.mtimeNs), String(st.ctimeNs), String(st.ino), 'f'.repeat(64)] }));
  assert.is(await fresh().hashFile(path), 'f'.repeat(64), 'the old entry is read');
  writeFileSync(file, '{"files":null,"lists":7}');
  assert.is(await fresh().hashFile(path), h, 'a wrong shape is no cache');
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
