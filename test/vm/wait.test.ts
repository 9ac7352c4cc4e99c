// waitForReady on a local session: incremental reads, partial and blank lines, and its three distinct errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceSession } from '../../lib/device/device.ts';
import { Cancelled, UserError } from '../../lib/error.ts';
import { waitForReady } from '../../lib/vm/boot.ts';
import { openSession, tinyConfig, repoRoot } from '../support/tiny-vm.ts';

let root = '';
let session: DeviceSession;
const pids: number[] = [];

test.before(async () => {
  root = await fs.mkdtemp(join(tmpdir(), `wait-${process.pid}-`));
  session = await openSession(tinyConfig(root).device, repoRoot);
});
test.after(async () => {
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  await session.close();
  await fs.rm(root, { recursive: true, force: true });
});

/** Starts `script` detached; returns the wait options and a record of every readFrom call. */
async function boot(name: string, script: string) {
  const dir = join(root, name);
  await fs.mkdir(dir, { recursive: true });
  const log = join(dir, 'console.log');
  const pidFile = join(dir, 'vm.pid');
  const pid = await session.spawnDetached(script, { cwd: dir, log, pidFile });
  pids.push(pid);
  const reads: { offset: number; bytes: number }[] = [];
  const spy: DeviceSession = Object.create(session);
  spy.readFrom = async (path, offset) => {
    const b = await session.readFrom(path, offset);
    reads.push({ offset, bytes: b.length });
    return b;
  };
  return { opts: { session: spy, log, pidFile, readyMarker: 'READY', failureMarkers: ['Kernel panic', 'FATAL: data'], timeoutMs: 20_000, name: 'Tiny', pollMs: 100 }, reads, log, pid };
}

async function failure(p: Promise<unknown>): Promise<UserError> {
  try { await p; } catch (e) { if (e instanceof UserError) return e; throw e; }
  throw new Error('expected a UserError');
}

test('ready: lines arrive whole, blank lines once, partial lines once, and the log is read incrementally', async () => {
  const { opts, reads, log } = await boot('ready', `printf 'one\\n\\n'; sleep 0.3; printf 'two half'; sleep 0.4; printf ' done\\nREA'; sleep 0.4; printf 'DY now\\n'; sleep 30`);
  const lines: string[] = [];
  const ready = await waitForReady({ ...opts, onLine: (l) => lines.push(l) });
  assert.equal(lines, ['one', '', 'two half done', 'READY now']);
  assert.ok(ready.ms > 800, `waited ${ready.ms}ms`);
  // Every read starts where the previous one ended: nothing is read twice.
  let expected = 0;
  for (const r of reads) { assert.is(r.offset, expected); expected += r.bytes; }
  assert.is(ready.bytes, (await fs.readFile(log)).length);
  assert.ok(reads.length >= 3, `${reads.length} reads`);
});

test('a failure marker is its own error, naming the VM and carrying the last lines', async () => {
  const { opts } = await boot('panic', `echo booting; sleep 0.2; echo 'Kernel panic - not syncing: test'; sleep 30`);
  const e = await failure(waitForReady(opts));
  assert.match(e.message, /Tiny: VM boot failed \("Kernel panic"/);
  assert.ok(e.details?.includes('booting'));
  assert.ok(e.details?.some((l) => l.startsWith('Kernel panic')));
});

test('a process that dies is its own error, with what it wrote last', async () => {
  const { opts } = await boot('died', `echo booting; sleep 0.3; printf 'last words'; exit 3`);
  const e = await failure(waitForReady(opts));
  assert.match(e.message, /Tiny: VM process died during boot/);
  assert.equal(e.details, ['booting', 'last words']);
});

test('the timeout says "timeout waiting for <name> (Ns)" with the last lines', async () => {
  const { opts } = await boot('timeout', `i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.1; done`);
  const started = Date.now();
  const e = await failure(waitForReady({ ...opts, timeoutMs: 2000 }));
  assert.is(e.message, 'timeout waiting for Tiny (2s)');
  assert.ok(Date.now() - started < 4000);
  // The last lines, in order, at most 20 of them (the machine may be slow: at least a few).
  const n = (e.details ?? []).map((l) => Number(l.replace('tick ', '')));
  assert.ok(n.length >= 5 && n.length <= 20 && n.every((x, i) => i === 0 || x === n[i - 1] + 1), String(e.details));
});

test('abort stops the wait with Cancelled', async () => {
  const { opts } = await boot('abort', `echo waiting; sleep 30`);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 300);
  try { await waitForReady({ ...opts, signal: ac.signal }); assert.unreachable('should have been cancelled'); } catch (e) { assert.instance(e, Cancelled); }
});

test.run();
