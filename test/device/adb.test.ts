// The adb transport against a RECORDED STAND-IN for the `adb` binary (test/support/adb-standin): no adbd exists
// here, so no real adb device can be reached. The stand-in logs each argv and serves a fake device from a folder.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Device } from '../../lib/config.ts';
import { openSession } from '../../lib/device/session.ts';
import { UserError } from '../../lib/error.ts';
import { exec } from '../../lib/exec.ts';
import { pushDataDisk, pushRootfs, pushSecrets } from '../../tasks/push.ts';
import { secretForms } from '../support/cmdline-watch.ts';
import { fakeContext, fileDep, hashSpy, sha256File, testService } from '../support/device-context.ts';

const standin = fileURLToPath(new URL('../support/adb-standin', import.meta.url));
let dir: string;
let fake: string;
let log: string;
const phone: Device = { name: 'phone', transport: 'adb', hypervisor: 'crosvm', arch: 'aarch64', root: '/data/sovereign' };
const service = testService(['TAILSCALE_AUTHKEY']);

test.before(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'sov-adb-test-'));
  fake = join(dir, 'device');
  log = join(dir, 'argv.log');
  await fs.mkdir(join(dir, 'bin'));
  await fs.mkdir(join(fake, 'data/local/tmp'), { recursive: true });
  await fs.symlink(standin, join(dir, 'bin', 'adb'));
  process.env.PATH = `${join(dir, 'bin')}:${process.env.PATH}`;
  process.env.ADB_STANDIN_ROOT = fake;
  process.env.ADB_STANDIN_LOG = log;
  process.env.ADB_STANDIN_DEVICES = 'R5CT0001 device';
});
test.after(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const calls = async () => (await fs.readFile(log, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean).map((l) => l.split('\t').slice(1));

test('every command carries -s <serial> and runs as root via `shell su -c`; pushes stage in /data/local/tmp; secrets never in argv', async () => {
  const work = join(dir, 'work');
  await fs.mkdir(work);
  const session = await openSession(phone, work); // no serial configured: the one attached device is used
  const rootfs = join(work, 'rootfs.img');
  await fs.writeFile(rootfs, 'ext4 image bytes');
  const dep = await fileDep('sql:rootfs', 'rootfs.img', rootfs);
  const ctx = (step: typeof pushRootfs, o: Partial<Parameters<typeof fakeContext>[0]> = {}) => fakeContext({ step, service, device: phone, session, root: work, ...o }).ctx;

  // What a killed run left staged (a full copy of an earlier rootfs push), and a file that is not ours.
  const staging = join(fake, 'data/local/tmp');
  await fs.writeFile(join(staging, '_data_sovereign_vm_sql_.rootfs.img.sov-tmp-1-deadbeef'), 'stale staged copy');
  await fs.writeFile(join(staging, 'someone-elses.bin'), 'not ours');
  assert.type(await pushRootfs.check!(ctx(pushRootfs, { deps: [dep] })), 'string');
  await pushRootfs.run!(ctx(pushRootfs, { deps: [dep] }));
  const onDevice = join(fake, 'data/sovereign/vm/sql');
  assert.is(await fs.readFile(join(onDevice, 'rootfs.img'), 'utf8'), 'ext4 image bytes');
  assert.is(await pushRootfs.check!(ctx(pushRootfs, { deps: [dep] })), true);

  const secret = `tskey-auth-${process.pid}-SECRET`;
  await pushSecrets.run!(ctx(pushSecrets, { secrets: { TAILSCALE_AUTHKEY: secret } }));
  assert.is((await fs.stat(join(onDevice, 'secrets.env'))).mode & 0o777, 0o600);
  assert.match(await fs.readFile(join(onDevice, 'secrets.env'), 'utf8'), `TAILSCALE_AUTHKEY=${secret}\n`);
  assert.is(await pushSecrets.check!(ctx(pushSecrets, { secrets: { TAILSCALE_AUTHKEY: secret } })), true);

  const disk = join(work, 'data.img');
  await exec('truncate', ['-s', '256M', disk]);
  await exec('mkfs.ext4', ['-q', '-F', disk]);
  await pushDataDisk.run!(ctx(pushDataDisk, { deps: [await fileDep('sql:data-disk', 'data.img', disk)] }));
  assert.is(await sha256File(join(onDevice, 'data.img')), await sha256File(disk));
  const spy = hashSpy(session);
  assert.is(await pushDataDisk.check!(ctx(pushDataDisk, { session: spy.session, flags: { verify: true } })), true, 'present: up to date');
  assert.equal(spy.hashed, [], '--verify hashes nothing of data.img (user data) on the device');

  const pid = await session.spawnDetached('exec sleep 20', { cwd: '/data/sovereign/vm/sql', log: 'console.log', pidFile: 'vm.pid' });
  assert.ok(await session.isAlive(pid));
  process.kill(pid, 'SIGTERM');
  await session.close();

  const all = await calls();
  const [first, ...rest] = all;
  assert.equal(first, ['devices'], 'serial looked up once, with `adb devices`');
  for (const argv of rest) assert.equal(argv.slice(0, 2), ['-s', 'R5CT0001'], `missing -s: ${argv.join(' ')}`);
  const kinds = new Set(rest.map((a) => a[2]));
  assert.equal([...kinds].sort(), ['get-state', 'push', 'shell']);
  for (const argv of rest.filter((a) => a[2] === 'shell')) assert.equal(argv.slice(3), ["su -c 'sh -s'"], 'fixed `su -c` command, script on stdin');
  const pushes = rest.filter((a) => a[2] === 'push');
  assert.is(pushes.length, 2, 'rootfs and the data disk bundle');
  for (const argv of pushes) assert.match(argv[4], /^\/data\/local\/tmp\//, 'staged in /data/local/tmp');
  assert.equal(await fs.readdir(staging), ['someone-elses.bin'], 'staging cleaned up (moved or unpacked), a killed push\'s staged copy swept, nothing else touched');
  const recorded = await fs.readFile(log, 'utf8');
  for (const form of secretForms(secret)) assert.not.ok(recorded.includes(form), `secret (as ${form}) in an adb argument list`);
});

test('several devices and no serial: a clear error listing them; unauthorised or absent: environment error with a hint', async () => {
  process.env.ADB_STANDIN_DEVICES = 'R5CT0001 device\nemulator-5554 device';
  const several = await openSession(phone, dir).then(() => undefined, (e: unknown) => e);
  assert.instance(several, UserError);
  assert.match((several as UserError).message, /R5CT0001.*emulator-5554/);
  assert.match((several as UserError).hint!, /serial/);

  process.env.ADB_STANDIN_DEVICES = 'R5CT0001 unauthorized';
  const unauth = await openSession({ ...phone, serial: 'R5CT0001' }, dir).then(() => undefined, (e: unknown) => e);
  assert.instance(unauth, UserError);
  assert.is((unauth as UserError).code, 'environment');
  assert.match((unauth as UserError).message, /unauthorized/);
  assert.match((unauth as UserError).hint!, /USB debugging/);

  process.env.ADB_STANDIN_DEVICES = '';
  const none = await openSession(phone, dir).then(() => undefined, (e: unknown) => e);
  assert.instance(none, UserError);
  assert.is((none as UserError).code, 'environment');
  const gone = await openSession({ ...phone, serial: 'R5CT0001' }, dir).then(() => undefined, (e: unknown) => e);
  assert.is((gone as UserError).code, 'environment');
  process.env.ADB_STANDIN_DEVICES = 'R5CT0001 device';
});

test.run();
