// The rebuilder over real files: skip when up to date, restore without re-running, early cutoff, corrupt store recovery.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fs, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { project, type Project } from '../support/engine.ts';
import { LocalStore } from '../../lib/store/local.ts';
import type { Step } from '../../lib/task.ts';
import { testSteps } from '../support/test-steps.ts';

let p: Project;
test.before.each(async () => { p = await project(); });
test.after.each(async () => { await p.cleanup(); });

test('first run runs everything; a second run executes nothing', async () => {
  const first = await p.run(['pack']);
  assert.ok(first.ok);
  assert.equal(p.ran().sort(), ['a:gen', 'a:pack', 'b:gen', 'b:pack']);
  assert.is(p.read('.sovereign/out/a/pack.txt'), 'HELLO A!');
  const second = await p.run(['pack']);
  assert.ok(second.ok);
  assert.equal(p.ran(), []);
  assert.is(second.outcome('a:pack'), 'fresh');
});

test('changing an input re-runs that service only; an unrelated edit changes nothing', async () => {
  await p.run(['pack']);
  p.ran();
  await p.write('inputs/b.txt', 'changed b');
  const r = await p.run(['pack']);
  assert.equal(p.ran().sort(), ['b:gen', 'b:pack']);
  assert.is(r.outcome('a:gen'), 'fresh');
  assert.is(p.read('.sovereign/out/b/pack.txt'), 'CHANGED B!');
});

test('deleting an output restores it from the store without re-running', async () => {
  await p.run(['pack']);
  p.ran();
  await fs.rm(join(p.root, '.sovereign/out/a/pack.txt'));
  const r = await p.run(['a:pack']);
  assert.ok(r.ok);
  assert.equal(p.ran(), []);
  assert.is(r.outcome('a:pack'), 'restored');
  assert.is(p.read('.sovereign/out/a/pack.txt'), 'HELLO A!');
});

test('a dependency not needed on disk is not restored (build without the bytes)', async () => {
  await p.run(['a:pack']);
  p.ran();
  await fs.rm(join(p.root, '.sovereign/out/a/gen.txt'));
  const r = await p.run(['a:pack']);
  assert.equal(p.ran(), []);
  assert.is(r.outcome('a:gen'), 'cached');
  await assert.not.ok(await fs.access(join(p.root, '.sovereign/out/a/gen.txt')).then(() => true, () => false));
});

test('early cutoff: a re-run with the same output leaves dependents up to date', async () => {
  await p.run(['a:pack']);
  p.ran();
  await p.write('inputs/a.txt', 'hello a   \n'); // new key for gen, same trimmed output
  const r = await p.run(['a:pack']);
  assert.equal(p.ran(), ['a:gen']);
  const done = r.events.find((e) => e.type === 'done' && e.task === 'a:gen');
  assert.ok(done && done.type === 'done' && done.cutoff, 'gen reports the cutoff');
  assert.is(r.outcome('a:pack'), 'fresh');
});

test('a corrupt store entry is detected, evicted and the task re-runs', async () => {
  await p.run(['a:pack']);
  p.ran();
  const store = new LocalStore(join(p.root, '.sovereign/cache'));
  const rec = (await store.listRecords()).find((r) => r.task === 'a:pack')!;
  await fs.writeFile(store.blobPath(rec.files[0].sha256), 'tampered');
  await fs.rm(join(p.root, '.sovereign/out/a/pack.txt'));
  const r = await p.run(['a:pack']);
  assert.ok(r.ok);
  assert.equal(p.ran(), ['a:pack']);
  assert.is(p.read('.sovereign/out/a/pack.txt'), 'HELLO A!');
  assert.ok(r.events.some((e) => e.type === 'warning' && /corrupt/.test(e.message)));
  // and the store holds a good copy again
  const again = (await store.listRecords()).find((x) => x.task === 'a:pack')!;
  assert.is((await fs.readFile(store.blobPath(again.files[0].sha256), 'utf8')), 'HELLO A!');
});

test('a truncated record is a miss, not a crash', async () => {
  await p.run(['a:gen']);
  p.ran();
  const dir = join(p.root, '.sovereign/cache/records');
  for (const f of readdirSync(dir)) await fs.writeFile(join(dir, f), '{"schema":1,"ke');
  await fs.rm(join(p.root, '.sovereign/out/a/gen.txt'));
  const r = await p.run(['a:gen']);
  assert.ok(r.ok);
  assert.equal(p.ran(), ['a:gen']);
});

test('a record whose output hash does not follow from its files is refused (self-checking records)', async () => {
  await p.run(['a:gen']);
  p.ran();
  const dir = join(p.root, '.sovereign/cache/records');
  for (const f of readdirSync(dir)) {
    const rec = JSON.parse(await fs.readFile(join(dir, f), 'utf8'));
    rec.outputHash = 'f'.repeat(64); // would poison every dependent's key
    await fs.writeFile(join(dir, f), JSON.stringify(rec));
  }
  const r = await p.run(['a:pack']);
  assert.ok(r.ok);
  assert.equal(p.ran(), ['a:gen', 'a:pack']);
});

test('the umask of whoever built an output does not change its output hash', async () => {
  const old = process.umask(0o002);
  try { await p.run(['a:gen']); } finally { process.umask(old); }
  const first = p.read('.sovereign/state/engine.json');
  const other = await project();
  await other.run(['a:gen']);
  const hash = (text: string) => JSON.parse(text).tasks['a:gen'].outputHash;
  assert.is(hash(other.read('.sovereign/state/engine.json')), hash(first));
  await other.cleanup();
});

test('--force re-runs; --dry-run changes nothing and says why', async () => {
  await p.run(['a:pack']);
  p.ran();
  await p.run(['a:pack'], { force: true });
  assert.equal(p.ran(), ['a:gen', 'a:pack']);
  await p.write('inputs/a.txt', 'other');
  const dry = await p.run(['a:pack'], { dryRun: true });
  assert.equal(p.ran(), []);
  const gen = dry.events.find((e) => e.type === 'done' && e.task === 'a:gen');
  assert.ok(gen && gen.type === 'done' && gen.outcome === 'would-run' && /file:inputs\/a.txt/.test(gen.reason), JSON.stringify(gen));
  assert.is(dry.outcome('a:pack'), 'would-run');
  assert.is(p.read('.sovereign/out/a/pack.txt'), 'HELLO A!');
});

test('disk full is an environment error with a hint; a plain exception is reported as a bug', async () => {
  const r = await p.run(['a:full']);
  const f = r.events.find((e) => e.type === 'failed');
  assert.ok(f && f.type === 'failed' && f.code === 'environment' && /ENOSPC/.test(f.message) && /disk is full/.test(f.hint ?? ''), JSON.stringify(f));
  const b = await p.run(['a:bug']);
  const g = b.events.find((e) => e.type === 'failed');
  assert.ok(g && g.type === 'failed' && g.code === 'bug' && /internal error/.test(g.message), JSON.stringify(g));
});

test('fail fast by default; --continue goes on with unaffected branches', async () => {
  const ff = await p.run(['a:fail', 'b:pack'], {});
  assert.not.ok(ff.ok);
  const cont = await p.run(['a:fail', 'b:pack'], { keepGoing: true });
  assert.not.ok(cont.ok);
  assert.is(cont.outcome('a:fail'), 'failed');
  assert.ok(['ran', 'fresh'].includes(cont.outcome('b:pack')!));
});

test('two tasks with the same key build once, even when scheduled together', async () => {
  const r = await p.run(['shared']);
  assert.ok(r.ok);
  assert.is(p.ran().length, 1);
  assert.is(p.read('.sovereign/out/a/shared.txt'), 'base');
  assert.is(p.read('.sovereign/out/b/shared.txt'), 'base');
});

test('a device task takes no work slot: a push runs while builds hold every slot (they wait for it here)', async () => {
  // Both work slots (concurrency 2) go to builds that finish only once the device task has run: were the push to wait
  // for a slot, each build would time out first and say so.
  let pushed!: () => void;
  const pushedP = new Promise<void>((r) => { pushed = r; });
  const hold: Step = {
    name: 'hold', kind: 'artifact', version: 1, summary: 'test: holds a slot until the push ran', deps: () => [], outputs: () => ['hold.txt'],
    inputs: (ctx) => ({ config: { service: ctx.service.name } }), // two keys: two builds, not one shared
    async run(ctx) {
      const timedOut = await Promise.race([pushedP.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 5000))]);
      if (timedOut) throw new Error('the device task never ran while the builds held the slots');
      await fs.writeFile(join(ctx.outDir, 'hold.txt'), 'ok');
    },
  };
  const push: Step = {
    name: 'push', kind: 'effect', version: 1, summary: 'test: a device task', usesDevice: true, deps: () => [],
    // Checked after the builds have taken both slots.
    check: async () => { await new Promise((r) => setTimeout(r, 300)); return 'not on the device'; },
    async run() { pushed(); },
  };
  const steps = new Map<string, Step>([...testSteps, [hold.name, hold], [push.name, push]]);
  const r = await p.run(['a:hold', 'b:hold', 'a:push'], { steps });
  const failure = r.events.find((e) => e.type === 'failed');
  assert.ok(r.ok, JSON.stringify(failure));
});

test.run();
