// exec() cancelled: it returns once the tool is stopped, even while a process outside the tool's group (an ssh
// ControlMaster serving a mux client, a daemon it started) still holds its output pipes.
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cancelled, UserError } from '../../lib/error.ts';
import { exec } from '../../lib/exec.ts';

/** Running, not a zombie (an orphan may wait a while for its reaper). */
const alive = (pid: number) => { try { return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; } };

test('an aborted tool whose stdout a process in another session holds: Cancelled while that process still runs', async () => {
  const dir = await fs.mkdtemp(join(tmpdir(), 'sov-exec-abort-'));
  const pidFile = join(dir, 'holder.pid');
  let pid = 0;
  try {
    const abort = new AbortController();
    // setsid: its own session and group, so the abort's group kill does not reach it; it inherits the tool's stdout.
    const running = exec('sh', ['-c', `setsid sh -c 'echo $$ > "$1.tmp" && mv "$1.tmp" "$1"; exec sleep 60' sh ${pidFile} & wait`], { signal: abort.signal }).then(() => undefined, (e: unknown) => e);
    for (let i = 0; i < 400 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
    pid = Number(await fs.readFile(pidFile, 'utf8'));
    assert.ok(pid > 0 && alive(pid), 'the holder runs');
    abort.abort();
    assert.instance(await running, Cancelled);
    assert.ok(alive(pid), 'exec returned while the holder still held its output (it would have waited for it)');
  } finally {
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a tool that exited by itself while another session holds its stdout: the timeout still ends the wait', async () => {
  const dir = await fs.mkdtemp(join(tmpdir(), 'sov-exec-timeout-'));
  const pidFile = join(dir, 'holder.pid');
  let pid = 0;
  try {
    const started = Date.now();
    // The tool exits at once; the holder keeps its stdout open for a minute, so `close` would wait that long.
    const running = exec('sh', ['-c', `setsid sh -c 'echo $$ > "$1.tmp" && mv "$1.tmp" "$1"; exec sleep 60' sh ${pidFile} & exit 0`], { timeoutMs: 1000 }).then(() => undefined, (e: unknown) => e);
    for (let i = 0; i < 400 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
    pid = Number(await fs.readFile(pidFile, 'utf8'));
    const got = await Promise.race([running, new Promise((r) => setTimeout(() => r('still waiting after 10 s'), 10_000).unref())]);
    assert.instance(got, UserError, `timed out as a UserError, got ${String(got)}`);
    assert.match((got as Error).message, /timed out/);
    assert.ok(Date.now() - started < 10_000);
  } finally {
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test.run();
