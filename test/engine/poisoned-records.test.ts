// Records from outside (an import, a remote, a hand-edited cache) are used only when they fit the step: its output
// names, modes 0644/0755, and a value of the step's shape. A poisoned record is evicted and the step runs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, promises as fs, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { project, type Project } from '../support/engine.ts';
import { outputHashOf, parseRecord, recordMismatch } from '../../lib/store/record.ts';
import type { CacheRecord } from '../../lib/store/store.ts';
import { step as image } from '../../tasks/image.ts';
import { step as base } from '../../tasks/base.ts';

let p: Project;
test.before.each(async () => { p = await project(); });
test.after.each(async () => { await p.cleanup(); });

/** Rewrites every record of the store with `change`, keeping it self-consistent (a valid output hash). */
async function poison(change: (r: CacheRecord) => void): Promise<void> {
  const dir = join(p.root, '.sovereign/cache/records');
  for (const f of readdirSync(dir)) {
    const rec = JSON.parse(await fs.readFile(join(dir, f), 'utf8')) as CacheRecord;
    change(rec);
    rec.outputHash = outputHashOf(rec.files, rec.value);
    await fs.writeFile(join(dir, f), JSON.stringify(rec));
  }
}

/** `warns`: the record parses but does not fit the step (a warning); else it is refused as malformed (a plain miss). */
async function rerunsAfter(change: (r: CacheRecord) => void, warns = true): Promise<void> {
  await p.run(['a:gen']);
  p.ran();
  await poison(change);
  await fs.rm(join(p.root, '.sovereign/out/a/gen.txt'));
  const r = await p.run(['a:pack']);
  assert.ok(r.ok, JSON.stringify(r.events.filter((e) => e.type === 'failed')));
  assert.equal(p.ran(), ['a:gen', 'a:pack'], 'the poisoned record was not used: gen ran again');
  if (warns) assert.ok(r.events.some((e) => e.type === 'warning' && /a:gen: the cached record/.test(e.message)), 'a warning says why');
}

test('a record naming a file the step does not declare (sub/evil) is refused; nothing is written there', async () => {
  await rerunsAfter((r) => {
    r.files.push({ ...r.files[0], name: 'sub/evil' }); // its blob exists: a restore would write it
  });
  assert.not.ok(existsSync(join(p.root, '.sovereign/out/a/sub/evil')), 'no sub/evil in the output folder');
});

test('a record with a setuid mode is refused, never restored as 4755', async () => {
  await rerunsAfter((r) => { r.files[0].mode = 0o4755; }, false);
  assert.is((await fs.stat(join(p.root, '.sovereign/out/a/gen.txt'))).mode & 0o7000, 0);
});

test('a value on a step that has none is refused', async () => {
  await rerunsAfter((r) => { r.value = '--help'; });
});

test('image and base values must look like image ids: `--help` never reaches docker', async () => {
  const rec = (value: unknown): CacheRecord => ({ schema: 1, key: 'k', task: 'a:image', files: [], value, outputHash: outputHashOf([], value), durationMs: 1, tools: {}, createdAt: '' });
  const id = `sha256:${'a'.repeat(64)}`;
  assert.is(recordMismatch(rec(id), [], image.valueShape), undefined);
  assert.ok(recordMismatch(rec('--help'), [], image.valueShape));
  assert.ok(recordMismatch(rec(null), [], image.valueShape));
  assert.is(recordMismatch(rec(null), [], base.valueShape), undefined);
  assert.ok(recordMismatch(rec('--help'), [], base.valueShape));
  const ctx = { config: { builder: 'docker' } } as Parameters<NonNullable<typeof image.present>>[0];
  assert.is(await image.present!(ctx, '--help'), false, 'present() refuses without asking docker');
  // And parseRecord (every record read from disk, a remote or an archive) refuses setuid and odd modes.
  assert.is(parseRecord({ ...rec(null), files: [{ name: 'x', sha256: 'a'.repeat(64), size: 1, mode: 0o4755 }], outputHash: outputHashOf([{ name: 'x', sha256: 'a'.repeat(64), mode: 0o4755 }], null) }), undefined);
});

test.run();
