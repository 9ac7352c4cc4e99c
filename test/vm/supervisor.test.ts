// The supervisor (supervise.sh): sh -n under dash, mksh (Android's shell) and busybox; restart/back-off/limit/stop with a stand-in
// hypervisor under each shell; then for real on the local device: a killed qemu comes back ready, and `stop` stops the supervisor first.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceSession } from '../../lib/device/device.ts';
import { exec } from '../../lib/exec.ts';
import { readyInLog, runningPid } from '../../lib/vm/process.ts';
import { describeSupervisor, renderSupervisor, supervisorState } from '../../lib/vm/supervisor.ts';
import { renderBootScript, renderHaltScript } from '../../lib/vm/autostart.ts';
import { start } from '../../tasks/start.ts';
import { startScript } from '../../tasks/start-script.ts';
import { status } from '../../tasks/status.ts';
import { stop } from '../../tasks/stop.ts';
import { cloudKernel, fakeRun, freePort, killVmsAndRemove, openSession, repoRoot, tinyConfig, tinyDisks } from '../support/tiny-vm.ts';

const SHELLS = ['dash', 'mksh', 'busybox sh'];
let root = '';
const pids: number[] = [];

const alive = (pid: number) => {
  try { return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0] !== 'Z'; } catch { return false; }
};
const ppid = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const read = (p: string) => fs.readFile(p, 'utf8').catch(() => '');

/** Polls `f` every 100 ms until it returns something truthy, or fails with `what` after `ms`. */
async function until<T>(what: string, f: () => Promise<T> | T, ms = 15_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** The VM pid the supervisor recorded in `dir`, once it differs from `not` and runs. */
const nextVmPid = (dir: string, not = 0) => until(`a VM pid other than ${not}`, async () => {
  const pid = Number((await read(join(dir, 'vm.pid'))).trim());
  return pid > 0 && pid !== not && alive(pid) ? pid : 0;
});

/** What `status` shows for the supervisor of `dir` (read through a session whose shell runs here). */
const shown = async (dir: string) => describeSupervisor(await supervisorState({ serviceDir: () => dir, run: (script: string) => exec('sh', ['-c', script], { nothrow: true }) } as unknown as DeviceSession, 'x'));

const state = async (dir: string) => Object.fromEntries((await read(join(dir, 'supervisor.state'))).trim().split('\n').map((l) => l.split('=', 2)));

test.before(async () => {
  for (const sh of SHELLS) {
    const r = await exec('sh', ['-c', `command -v ${sh.split(' ')[0]}`], { nothrow: true });
    if (r.code !== 0) throw new Error(`${sh} is not installed (scripts/setup-host.sh installs it: mksh is Android's shell)`);
  }
  root = await fs.mkdtemp(join(tmpdir(), `supervisor-${process.pid}-`));
  await fs.writeFile(join(root, 'supervise.sh'), renderSupervisor(), { mode: 0o755 });
});

test.after(async () => {
  const vm = session ? await runningPid(session, 'tiny').catch(() => undefined) : undefined;
  await session?.close();
  await killVmsAndRemove([...pids, vm], root);
});

test('supervise.sh is valid sh for dash, mksh and busybox', async () => {
  for (const sh of SHELLS) {
    const [bin, ...args] = sh.split(' ');
    const r = await exec(bin, [...args, '-n', join(root, 'supervise.sh')], { nothrow: true });
    assert.is(r.code, 0, `${sh} -n: ${r.stderr}`);
  }
});

for (const sh of SHELLS) {
  test(`${sh}: a killed VM process (stand-in hypervisor: sleep) is restarted with a back-off, and the restart limit is honoured`, async () => {
    const dir = join(root, sh.replace(' ', '-'));
    await fs.mkdir(dir);
    // STAND-IN hypervisor: start.sh execs sleep, as the real one execs qemu/crosvm.
    await fs.writeFile(join(dir, 'start.sh'), 'echo "booting $$"\necho READY\nexec sleep 600\n');
    // STAND-IN teardown.sh (crosvm's start.sh writes the real one: test/vm/crosvm-network.test.ts runs it): it must run once, on giving up.
    await fs.writeFile(join(dir, 'teardown.sh'), 'echo torn down >> teardown.log\n');
    const [bin, ...args] = sh.split(' ');
    const child = spawn(bin, [...args, join(root, 'supervise.sh')], {
      cwd: dir, detached: true, stdio: 'ignore',
      env: { ...process.env, SOVEREIGN_RESTART_LIMIT: '2', SOVEREIGN_RESTART_DELAY: '1' },
    });
    const supervisor = child.pid!;
    pids.push(supervisor);
    await fs.writeFile(join(dir, 'supervisor.pid'), `${supervisor}\n`); // as start's detached spawn writes it
    let vm = await nextVmPid(dir);
    assert.is(ppid(vm), supervisor, 'the supervisor is the VM process\'s parent, not init');
    for (let restart = 1; restart <= 2; restart++) {
      process.kill(vm, 'SIGKILL');
      const t = Date.now();
      // During the back-off status says so.
      await until('status to show the back-off', async () => (await shown(dir)) === `supervisor pid ${supervisor} (backoff), ${restart} restart${restart > 1 ? 's' : ''}, last exit: killed by signal KILL`, 5_000);
      vm = await nextVmPid(dir, vm);
      const waited = Date.now() - t;
      assert.ok(waited >= 900 * restart, `back-off doubles: restart ${restart} after ${waited} ms`);
      assert.is(ppid(vm), supervisor);
      const s = await until('state running', async () => { const x = await state(dir); return x.state === 'running' && x; });
      assert.equal([s.state, s.restarts, s.last_exit], ['running', String(restart), 'killed by signal KILL']);
    }
    assert.match(await read(join(dir, 'console.prev.log')), /^booting \d+\nREADY\n$/, 'the previous run\'s console is kept aside');
    process.kill(vm, 'SIGKILL');
    await until('the supervisor to give up', () => !alive(supervisor), 10_000);
    assert.equal(await state(dir), { pid: String(supervisor), state: 'gave-up', restarts: '2', last_exit: 'killed by signal KILL', since: (await state(dir)).since });
    await sleep(1500);
    assert.not.ok(await fs.access(join(dir, 'vm.pid')).then(() => true, () => false), 'no VM after giving up');
    const log = await read(join(dir, 'supervisor.log'));
    assert.match(log, /ended after \d+s: killed by signal KILL; restart 1 of 2 in 1s/);
    assert.match(log, /restart 2 of 2 in 2s/);
    assert.match(log, /giving up after 2 restarts \(limit 2\)\n.* removed the VM's network \(its TAP and port rules\) as stop does\n$/);
    assert.is(await read(join(dir, 'teardown.log')), 'torn down\n', 'the teardown ran once, on giving up, not between restarts');
    assert.is(await shown(dir), 'supervisor not running (gave-up), 2 restarts, last exit: killed by signal KILL');
  });
}

test('TERM ends the supervisor only: the VM runs on for stop to shut down, and nothing restarts it', async () => {
  const dir = join(root, 'term');
  await fs.mkdir(dir);
  await fs.writeFile(join(dir, 'start.sh'), 'exec sleep 600\n');
  await fs.writeFile(join(dir, 'teardown.sh'), 'echo torn down >> teardown.log\n');
  const child = spawn('mksh', [join(root, 'supervise.sh')], { cwd: dir, detached: true, stdio: 'ignore', env: { ...process.env, SOVEREIGN_RESTART_DELAY: '0' } });
  pids.push(child.pid!);
  const vm = await nextVmPid(dir);
  pids.push(vm);
  process.kill(child.pid!, 'SIGTERM');
  await until('the supervisor to end', () => !alive(child.pid!));
  assert.ok(alive(vm));
  assert.is((await state(dir)).state, 'stopped');
  process.kill(vm, 'SIGKILL');
  await sleep(1000);
  assert.is((await read(join(dir, 'vm.pid'))).trim(), String(vm), 'no new VM was started');
  assert.is(await read(join(dir, 'teardown.log')), '', 'stop\'s TERM does not tear the network down: stop does, after the VM');
});

// --- For real: the tiny VM under qemu (TCG) on the local device, started by the start task.
let session: DeviceSession;

test('real qemu: start runs the VM under its supervisor; a killed qemu is restarted and ready again; status shows it', async () => {
  const dev = join(root, 'device');
  const dir = join(dev, 'vm', 'tiny');
  await fs.mkdir(dir, { recursive: true });
  const { kernel, modules } = await cloudKernel();
  await fs.copyFile(kernel, join(dir, 'kernel'));
  await tinyDisks(dir, modules);
  process.env.SOVEREIGN_PORT_TINY_8080 = String(await freePort());
  process.env.SOVEREIGN_ACCEL = 'tcg';
  process.env.SOVEREIGN_RESTART_DELAY = '1';
  session = await openSession(tinyConfig(dev).device, repoRoot);
  const run = (deps = {}) => fakeRun(tinyConfig(dev, { startTimeout: 180 }).config, session, { deps });
  const out = await fs.mkdtemp(join(root, 'render-'));
  await startScript.run!({ ...run().ctx, outDir: out });
  await fs.rename(join(out, 'start.sh'), join(dir, 'start.sh'));

  await start.run!(run({ 'tiny:deploy': 'set-1' }).ctx);
  const supervisor = Number((await read(join(dir, 'supervisor.pid'))).trim());
  const first = (await runningPid(session, 'tiny'))!;
  assert.ok(alive(supervisor));
  assert.is(ppid(first), supervisor, 'qemu\'s parent is the supervisor');
  assert.match(readFileSync(`/proc/${first}/cmdline`, 'utf8'), /^qemu-system-x86_64\0/);

  process.kill(first, 'SIGKILL');
  const t = Date.now();
  const second = await until('the restarted VM to be ready', async () => {
    const pid = await runningPid(session, 'tiny');
    return pid && pid !== first && (await readyInLog(session, 'tiny', 'TINY READY')) ? pid : 0;
  }, 180_000);
  console.log(`  killed qemu back up and ready in ${((Date.now() - t) / 1000).toFixed(1)}s (1 s back-off + TCG boot)`);
  assert.is(ppid(second), supervisor);
  assert.match(await read(join(dir, 'console.log')), /tiny: \/data mounted from \/dev\/nvme1n1/);
  const s = run();
  await status.run!(s.ctx);
  assert.match(s.lines[0], /^device dev \(local .*\): connected, kernel \S+, (root|not root)/);
  assert.ok(s.lines[0].includes(`, kernel ${release()}, `), `the device's uname -r: ${s.lines[0]}`);
  assert.match(s.lines[1], new RegExp(`^Tiny: running, ready \\(pid ${second}, deployed set set-1\\)$`));
  assert.is(s.lines[2], `  supervisor pid ${supervisor} (running), 1 restart, last exit: killed by signal KILL`);
});

test('real qemu: stop stops the supervisor first (no restart), then shuts the guest down cleanly', async () => {
  const dir = session.serviceDir('tiny');
  const supervisor = Number((await read(join(dir, 'supervisor.pid'))).trim());
  const vm = (await runningPid(session, 'tiny'))!;
  const r = fakeRun(tinyConfig(join(root, 'device')).config, session);
  await stop.run!(r.ctx);
  assert.is(r.lines[0], `Tiny: stopped (pid ${vm}, clean shutdown)`);
  assert.not.ok(alive(supervisor));
  assert.not.ok(alive(vm));
  await sleep(2500); // longer than the 1 s back-off: a live supervisor would have started a new VM by now
  assert.is(await runningPid(session, 'tiny'), undefined);
  assert.equal(await supervisorState(session, 'tiny').then((x) => [x?.state, x?.alive]), ['stopped', false]);
  const st = fakeRun(tinyConfig(join(root, 'device')).config, session);
  await status.run!(st.ctx);
  assert.equal(st.lines, ['Tiny: not running', '  supervisor not running (stopped), 1 restart, last exit: killed by signal KILL']);
});

test('real qemu: boot.sh, as the systemd unit runs it (a bare environment), brings the stopped VM back ready under a new supervisor; halt.sh (its ExecStop) shuts it down cleanly', async () => {
  const dev = join(root, 'device');
  const dir = session.serviceDir('tiny');
  const { config, device } = tinyConfig(dev, { startTimeout: 180 });
  await fs.writeFile(join(dev, 'boot.sh'), renderBootScript(config, device), { mode: 0o755 });
  await fs.writeFile(join(dev, 'halt.sh'), renderHaltScript(config, device), { mode: 0o755 });
  const t = Date.now();
  // No SOVEREIGN_ACCEL: boot.sh passes start's stored verdict (vm/.accel); only the test's free port is passed on.
  const r = await exec('/bin/sh', [join(dev, 'boot.sh')], { nothrow: true, timeoutMs: 200_000, env: { PATH: process.env.PATH, SOVEREIGN_PORT_TINY_8080: process.env.SOVEREIGN_PORT_TINY_8080 } });
  assert.is(r.code, 0, r.stderr);
  const log = await read(join(dev, 'boot.log'));
  assert.match(log, /boot: tiny: started under its supervisor\n.*boot: tiny: ready after \d+s\n.*boot: done; ready: tiny \n$/, log);
  console.log(`  boot.sh brought the tiny VM back ready in ${((Date.now() - t) / 1000).toFixed(1)}s (TCG)`);
  const supervisor = Number((await read(join(dir, 'supervisor.pid'))).trim());
  const vm = (await runningPid(session, 'tiny'))!;
  assert.ok(alive(supervisor) && vm > 0);
  assert.is(ppid(vm), supervisor, "qemu's parent is the supervisor boot.sh started");
  assert.match(readFileSync(`/proc/${vm}/cmdline`, 'utf8'), /\0-accel\0tcg\0/);
  const st = fakeRun(tinyConfig(dev).config, session);
  await status.run!(st.ctx);
  assert.match(st.lines.join('\n'), new RegExp(`Tiny: running, ready \\(pid ${vm}, deployed set set-1\\)\n  supervisor pid ${supervisor} \\(running\\), 0 restarts\n`));

  // The box shuts down: the unit's ExecStop runs halt.sh, which stops the supervisor first and asks the guest to shut down.
  const h = await exec('/bin/sh', [join(dev, 'halt.sh')], { nothrow: true, timeoutMs: 120_000, env: { PATH: process.env.PATH } });
  assert.is(h.code, 0, h.stderr);
  assert.match(await read(join(dev, 'boot.log')), new RegExp(`halt: stopping the VMs: tiny\n.*halt: tiny: shutdown ${vm}\n.*halt: done\n$`));
  assert.not.ok(alive(vm) || alive(supervisor));
  await sleep(2500); // longer than the 1 s back-off: nothing restarted it
  assert.is(await runningPid(session, 'tiny'), undefined);
});

test.run();
