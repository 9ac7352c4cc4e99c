// A lock whose pid now belongs to another process (pid reuse, or our own pid in a fresh container) is stale:
// the lock records the holder's start time, and a live pid that started at another time is not the holder.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock, processStart } from '../../lib/lock.ts';

let dir: string;
let file: string;
test.before.each(() => { dir = mkdtempSync(join(tmpdir(), 'sov-lock-')); file = join(dir, 'lock'); });
test.after.each(async () => { await fs.rm(dir, { recursive: true, force: true }); });

const holder = (pid: number, start: string | undefined) => JSON.stringify({ pid, since: 'earlier', token: 'old', ...(start !== undefined && { start }) });

test('a lock naming a live pid that started at another time is taken over at once', async () => {
  // Our own pid, as a run in a fresh container (or a reused pid) would find it.
  const mine = processStart(process.pid);
  assert.ok(mine, 'this Linux reports process start times');
  await fs.writeFile(file, holder(process.pid, `${mine}0`));
  const lock = await acquireLock(file, { waitMs: 0 });
  const now = JSON.parse(await fs.readFile(file, 'utf8')) as { token: string; start: string };
  assert.is.not(now.token, 'old', 'the lock is ours');
  assert.is(now.start, mine, 'and records our start');
  await lock.release();
  assert.not.ok(existsSync(file));
});

test('a lock held by a live process that is still the one that took it is respected', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    await new Promise((r) => child.once('spawn', r));
    await fs.writeFile(file, holder(child.pid!, processStart(child.pid!)));
    const err = await acquireLock(file, { waitMs: 0 }).then(() => undefined, (e: Error) => e);
    assert.match(String(err?.message), new RegExp(`another sovereign run is in progress in this repo \\(pid ${child.pid}`));
    // An older lock without a start time: only the pid can be checked, as before.
    await fs.writeFile(file, holder(child.pid!, undefined));
    assert.ok(await acquireLock(file, { waitMs: 0 }).then(() => false, () => true), 'a start-less lock of a live pid is kept');
  } finally {
    child.kill('SIGKILL');
  }
});

test.run();
