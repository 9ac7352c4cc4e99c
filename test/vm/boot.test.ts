// The run half of the lifecycle with real qemu (TCG) on the local device: start, skip/restart, test, status, logs, stop, remove, and boot failures.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fs } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceInput } from '../../lib/config.ts';
import type { DeviceSession } from '../../lib/device/device.ts';
import { UserError } from '../../lib/error.ts';
import { exec } from '../../lib/exec.ts';
import { runningPid } from '../../lib/vm/process.ts';
import { logs } from '../../tasks/logs.ts';
import { remove } from '../../tasks/remove.ts';
import { start } from '../../tasks/start.ts';
import { startScript } from '../../tasks/start-script.ts';
import { status } from '../../tasks/status.ts';
import { stop } from '../../tasks/stop.ts';
import { test as testStep } from '../../tasks/test.ts';
import { cloudKernel, fakeRun, freePort, killVmsAndRemove, openSession, repoRoot, tinyConfig, tinyDisks } from '../support/tiny-vm.ts';

let root = '';
let dir = '';
let session: DeviceSession;
const started: number[] = [];

/** A run context for the tiny service with these config fields (ports 8080 and 8081 forwarded unless changed). */
const run = (service: Partial<ServiceInput> = {}, opts: Parameters<typeof fakeRun>[2] = {}) =>
  fakeRun(tinyConfig(root, { ports: [8080, 8081], startTimeout: 180, ...service }).config, session, opts);

async function renderScript(service: Partial<ServiceInput> = {}) {
  const out = await fs.mkdtemp(join(root, 'render-'));
  await startScript.run!({ ...run(service).ctx, outDir: out });
  await fs.rename(join(out, 'start.sh'), join(dir, 'start.sh'));
}

async function fails(p: Promise<unknown>): Promise<UserError> {
  try { await p; } catch (e) { if (e instanceof UserError) return e; throw e; }
  throw new Error('expected a UserError');
}

import { readFileSync } from 'node:fs';
/** Running and not a zombie (an exited VM stays a zombie until pid 1 reaps it). */
const alive = (pid: number) => {
  try { return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0] !== 'Z'; } catch { return false; }
};

test.before(async () => {
  const q = await exec('sh', ['-c', 'command -v qemu-system-x86_64'], { nothrow: true });
  if (q.code !== 0) throw new Error('qemu-system-x86_64 is not installed: apt-get install -y --no-install-recommends qemu-system-x86');
  root = await fs.mkdtemp(join(tmpdir(), `boot-${process.pid}-`));
  dir = join(root, 'vm', 'tiny');
  await fs.mkdir(dir, { recursive: true });
  const { kernel, modules } = await cloudKernel();
  await fs.copyFile(kernel, join(dir, 'kernel'));
  await tinyDisks(dir, modules);
  await fs.writeFile(join(dir, 'secrets.env'), Buffer.concat([Buffer.from('TINY_SECRET=not-in-any-log\n'), Buffer.alloc(485)]), { mode: 0o600 });
  process.env.SOVEREIGN_PORT_TINY_8080 = String(await freePort());
  process.env.SOVEREIGN_PORT_TINY_8081 = String(await freePort());
  delete process.env.SOVEREIGN_ACCEL; // let the start task probe KVM (broken here: it must pick TCG)
  session = await openSession(tinyConfig(root).device, repoRoot);
  await renderScript();
});

test.after(async () => {
  if (session) {
    const pid = await runningPid(session, 'tiny').catch(() => undefined);
    if (pid) started.push(pid);
    await session.close();
  }
  await killVmsAndRemove(started, root);
});

test('start boots the VM to its ready marker, then is up to date for the same deployed set', async () => {
  const r = run({}, { deps: { 'tiny:deploy': 'set-1' } });
  assert.is(await start.check!(r.ctx), 'VM not running');
  const t = Date.now();
  await start.run!(r.ctx);
  const secs = (Date.now() - t) / 1000;
  console.log(`  tiny VM ready in ${secs.toFixed(1)}s (qemu TCG, start task wall time)`);
  const pid = (await runningPid(session, 'tiny'))!;
  started.push(pid);
  assert.ok(alive(pid));
  assert.ok(r.lines.some((l) => /^booting Tiny \(pid \d+, qemu\/tcg, supervisor pid \d+\)$/.test(l)), r.lines.slice(0, 3).join('\n'));
  assert.ok(r.lines.includes('| TINY READY'));
  assert.ok(r.lines.includes('| tiny: /data mounted from /dev/nvme1n1 (1 boots)'), 'data disk is the second nvme');
  assert.ok(r.lines.includes('| tiny: secrets disk readable'), 'secrets disk is the third nvme');
  assert.not.ok(r.lines.some((l) => l.includes('not-in-any-log')));
  assert.is((await fs.readFile(join(root, 'vm', '.accel'), 'utf8')).trim(), 'tcg');
  assert.is((await fs.readFile(join(dir, 'deployed'), 'utf8')).trim(), 'set-1');
  assert.is(await start.check!(r.ctx), true);
  assert.match(String(await start.check!(run({}, { deps: { 'tiny:deploy': 'set-2' } }).ctx)), /runs an older deployed set/);
});

test('test passes on a running VM; a forwarded port nobody serves in the guest fails', async () => {
  const ok = run({ ports: [8080] });
  await testStep.run!(ok.ctx);
  assert.match(ok.lines[0], /^device dev \(local .*\): connected, kernel \S+, (root|not root \(uid \d+\))$/);
  assert.ok(ok.lines[0].includes(`, kernel ${release()}, `), `the device's uname -r: ${ok.lines[0]}`);
  assert.equal(ok.lines.slice(1, 4).map((l) => l.replace(/ \(.*\)/, '')), ['1. VM process running: ✓ PASS', '2. ready marker "TINY READY" in console.log: ✓ PASS', '3. port 8080 answers: ✓ PASS']);
  assert.is(ok.lines[ok.lines.length - 1], '=== ALL TESTS PASSED ===');
  const bad = run();
  const e = await fails(testStep.run!(bad.ctx));
  assert.match(e.message, /1 of 4 checks failed/);
  assert.ok(bad.lines.some((l) => l.startsWith('4. port 8081 answers') && l.endsWith('✗ FAIL')));
});

test('test checks the web UI status through the port forward: an expected status passes, another fails naming it', async () => {
  const ok = run({ ports: [8080], checks: { http: { port: 8080, path: '/' } } });
  await testStep.run!(ok.ctx);
  assert.ok(ok.lines.some((l) => /^4\. http:\/\/127\.0\.0\.1:\d+\/ answers HTTP 200\/302\/303: ✓ PASS$/.test(l)), ok.lines.join('\n'));
  const bad = run({ ports: [8080], checks: { http: { port: 8080, path: '/missing', expect: [200] } } });
  const e = await fails(testStep.run!(bad.ctx));
  assert.match(e.message, /1 of 4 checks failed/);
  assert.ok(bad.lines.some((l) => l.endsWith('/missing answers HTTP 200: ✗ FAIL (got HTTP 404)')), bad.lines.join('\n'));
});

test('status and logs print through ctx.log', async () => {
  const s = run();
  await status.run!(s.ctx);
  assert.match(s.lines[0], /^Tiny: running, ready \(pid \d+, deployed set set-1\)$/, 'the device line came with test, once per session');
  assert.match(s.lines[1], /^  supervisor pid \d+ \(running\), 0 restarts$/);
  const l = run();
  await logs.run!(l.ctx);
  assert.ok(l.lines.includes('TINY READY'));
});

test('a new deployed set restarts the VM; data.img survives the restart', async () => {
  const before = (await runningPid(session, 'tiny'))!;
  const r = run({}, { deps: { 'tiny:deploy': 'set-2' } });
  await start.run!(r.ctx);
  const after = (await runningPid(session, 'tiny'))!;
  started.push(after);
  assert.ok(r.lines.includes(`stopped the running VM (pid ${before}) to start the deployed set`));
  assert.is.not(after, before);
  assert.not.ok(alive(before));
  assert.ok(r.lines.includes('| tiny: /data mounted from /dev/nvme1n1 (2 boots)'));
});

test('stop shuts the guest down cleanly (its init runs its shutdown), then the VM is gone; idempotent', async () => {
  const pid = (await runningPid(session, 'tiny'))!;
  const r = run();
  await stop.run!(r.ctx);
  assert.is(r.lines[0], `Tiny: stopped (pid ${pid}, clean shutdown)`);
  assert.match(await fs.readFile(join(dir, 'console.log'), 'utf8'), /tiny: shutting down/);
  assert.not.ok(alive(pid));
  assert.not.ok(await fs.access(join(dir, 'vm.pid')).then(() => true, () => false));
  const again = run();
  await stop.run!(again.ctx);
  assert.is(again.lines[0], 'Tiny: VM not running');
  assert.match(String(await start.check!(run({}, { deps: { 'tiny:deploy': 'set-2' } }).ctx)), /not running/);
});

test('a ready marker that never comes: the timeout error names the VM and carries the last log lines; the VM is stopped', async () => {
  const e = await fails(start.run!(run({ readyMarker: 'NEVER PRINTED', startTimeout: 25 }, { deps: { 'tiny:deploy': 'x' } }).ctx));
  assert.is(e.message, 'timeout waiting for Tiny (25s)');
  assert.is(await runningPid(session, 'tiny'), undefined);
  // Whatever the guest reached in 25 s (early kernel boot on a loaded machine, or TINY READY), the error
  // carries the console's lines as they were: a consecutive run of the log, ending at the timeout.
  const details = e.details ?? [];
  assert.ok(details.length > 0, 'the error carries console lines');
  const log = (await fs.readFile(join(dir, 'console.log'), 'utf8')).replace(/\r/g, '');
  assert.ok(log.includes(details.join('\n')), details.join('\n'));
});

test('a guest that prints "Kernel panic": the failure-marker error, and the VM is stopped', async () => {
  await renderScript({ cmdline: 'tiny.mode=panic' });
  const e = await fails(start.run!(run({ cmdline: 'tiny.mode=panic' }, { deps: { 'tiny:deploy': 'x' } }).ctx));
  assert.match(e.message, /^Tiny: VM boot failed \("Kernel panic" in the console log\)/);
  assert.ok(e.details?.some((l) => l.startsWith('Kernel panic - not syncing: tiny test guest')));
  assert.is(await runningPid(session, 'tiny'), undefined);
  assert.not.ok(await fs.access(join(dir, 'deployed')).then(() => true, () => false), 'a failed start records no deployed set');
});

test('remove keeps data.img; --purge asks, and deletes only when confirmed', async () => {
  const r = run();
  await remove.run!(r.ctx);
  assert.equal(await fs.readdir(dir), ['data.img']);
  assert.match(r.lines[0], /kept data.img/);
  const no = run({}, { flags: { purge: true }, confirm: false });
  await fails(remove.run!(no.ctx));
  assert.is(no.confirms.length, 1);
  assert.match(no.confirms[0], /data.img/);
  assert.equal(await fs.readdir(dir), ['data.img']);
  const yes = run({}, { flags: { purge: true }, confirm: true });
  await remove.run!(yes.ctx);
  assert.not.ok(await fs.access(dir).then(() => true, () => false));
  const again = run();
  await remove.run!(again.ctx);
  assert.is(again.lines[0], 'Tiny: nothing to remove');
});

test.run();
