// Faults mid-run, with real processes: a killed or interrupted run records nothing as done; two runs at once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { project, type Project } from '../support/engine.ts';

let p: Project;
test.before.each(async () => { p = await project(); });
test.after.each(async () => { await p.cleanup(); });

function child(targets: string[], env: Record<string, string> = {}): { proc: ChildProcess; done: Promise<{ code: number | null; signal: string | null; out: string; err: string }> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../support/engine-child.ts'), p.root, ...targets], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (c) => (out += c));
  proc.stderr!.on('data', (c) => (err += c));
  return { proc, done: new Promise((r) => proc.on('close', (code, signal) => r({ code, signal, out, err }))) };
}

async function waitFor(file: string, ms = 20_000) {
  const end = Date.now() + ms;
  while (!existsSync(file)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${file}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a task killed mid-run (SIGKILL) is re-run next time; nothing half-done is kept', async () => {
  const c = child(['a:slow'], { SLOW_MS: '60000' });
  await waitFor(join(p.root, 'slow.started'));
  c.proc.kill('SIGKILL');
  await c.done;
  assert.not.ok(existsSync(join(p.root, '.sovereign/out/a/slow.txt')), 'no partial output in place');
  p.ran();
  const r = await p.run(['a:slow']);
  assert.ok(r.ok);
  assert.equal(p.ran(), ['a:slow'], 'the killed task runs again');
  assert.is(p.read('.sovereign/out/a/slow.txt'), 'partial complete');
  assert.not.ok(existsSync(join(p.root, '.sovereign/tmp')) && (await fs.readdir(join(p.root, '.sovereign/tmp'))).length > 0, 'temp leftovers cleared');
});

test('SIGTERM stops the run: exit 130, task cancelled, nothing recorded', async () => {
  const c = child(['a:slow'], { SLOW_MS: '60000' });
  await waitFor(join(p.root, 'slow.started'));
  c.proc.kill('SIGTERM');
  const r = await c.done;
  assert.is(r.code, 130, r.err);
  assert.ok(r.out.includes('"type":"cancelled"'));
  assert.not.ok(existsSync(join(p.root, '.sovereign/out/a/slow.txt')));
  assert.equal(await fs.readdir(join(p.root, '.sovereign/cache/records')).catch(() => []), []);
});

test('a second run on the same repo waits for the lock, or says clearly that one is running', async () => {
  const first = child(['a:slow'], { SLOW_MS: '8000' });
  await waitFor(join(p.root, 'slow.started'));
  const impatient = await child(['b:gen']).done;
  assert.is(impatient.code, 5);
  assert.match(impatient.err, /another sovereign run is in progress in this repo \(pid \d+/);
  const patient = child(['b:gen'], { WAIT_MS: '60000' });
  const r2 = await patient.done;
  assert.is(r2.code, 0, r2.err);
  assert.ok(r2.out.includes('waiting for another run to finish'));
  assert.is((await first.done).code, 0);
});

test('a dead run\'s lock is taken over by exactly one of many racing runs', async () => {
  const { acquireLock } = await import('../../lib/lock.ts');
  const file = join(p.root, '.sovereign', 'lock');
  await fs.mkdir(join(p.root, '.sovereign'), { recursive: true });
  for (let round = 0; round < 30; round++) {
    await fs.writeFile(file, JSON.stringify({ pid: 2 ** 22 + 12345, since: 'long ago', token: 'dead' })); // no such pid
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => acquireLock(file, { waitMs: 0 })));
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.is(won.length, 1, `round ${round}: ${won.length} runs hold the lock`);
    await (won[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
    assert.not.ok(existsSync(file), 'released');
  }
});

test.run();
