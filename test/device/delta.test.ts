// Delta push of rootfs.img on the local device, over real ssh (sshd in a netns) and through the RECORDED adb STAND-IN
// (test/support/adb-standin: no adbd here): small ext4 images made with mkfs.ext4 -d, changed a little.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Device } from '../../lib/config.ts';
import type { DeviceSession } from '../../lib/device/device.ts';
import { openSession } from '../../lib/device/session.ts';
import { Cancelled } from '../../lib/error.ts';
import { exec } from '../../lib/exec.ts';
import { pushRootfs } from '../../tasks/push.ts';
import { fakeContext, fileDep, sha256File, testService } from '../support/device-context.ts';
import { startSshdDevice, type SshdDevice } from '../support/sshd-netns.ts';

const service = testService();
const local: Device = { name: 'local', transport: 'local', hypervisor: 'qemu', arch: 'x86_64', root: '.sovereign/device' };
const phone: Device = { name: 'phone', transport: 'adb', hypervisor: 'crosvm', arch: 'aarch64', root: '/data/sovereign', serial: 'R5CT0001' };
let work: string;
let sshd: SshdDevice | undefined;
let hang: { armed: string; pid: string };
/** Three images: v1; v2 = one line of a script changed; v3 = v2 plus a new 256 KiB file (a "package"). */
const img: string[] = [];

interface Target { name: string; session: DeviceSession; device: Device; rootfs: string }
const targets: Target[] = [];

test.before(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'sov-delta-test-'));
  // A STAND-IN for sha256sum first in PATH on every target (here, and in the device's shells over ssh and adb): the real
  // one, unless the test arms it; armed, the next call writes its pid and hangs, so a kill lands mid-verification.
  const shim = join(work, 'hang-bin');
  hang = { armed: join(work, 'hang-armed'), pid: join(work, 'hang-pid') };
  await fs.mkdir(shim);
  const real = (await exec('sh', ['-c', 'command -v sha256sum'])).stdout.trim();
  await fs.writeFile(join(shim, 'sha256sum'), `#!/bin/sh\nif [ -e ${hang.armed} ]; then rm -f ${hang.armed}; echo $$ > ${hang.pid}.tmp && mv ${hang.pid}.tmp ${hang.pid}; exec sleep 60; fi\nexec ${real} "$@"\n`, { mode: 0o755 });
  process.env.PATH = `${shim}:${process.env.PATH}`;
  const tree = join(work, 'tree');
  await fs.mkdir(join(tree, 'sbin'), { recursive: true });
  await fs.writeFile(join(tree, 'big.bin'), randomBytes(3 << 20));
  const init = (line: string) => fs.writeFile(join(tree, 'sbin/init'), `#!/bin/sh\n${'# padding line\n'.repeat(200)}${line}\nexec sleep 1\n`);
  for (const [v, change] of [[1, () => init('echo v1')], [2, () => init('echo v2')], [3, () => fs.writeFile(join(tree, 'pkg.bin'), randomBytes(256 << 10))]] as const) {
    await change();
    img[v] = join(work, `rootfs-v${v}.img`);
    // Fixed UUID, hash seed and clock: only the content differs between the versions, as in a reproducible rootfs.
    await exec('mkfs.ext4', ['-q', '-F', '-b', '4096', '-U', '6f1d1a8e-0000-4000-8000-000000000001', '-E', 'hash_seed=6f1d1a8e-0000-4000-8000-000000000002', '-d', tree, img[v], '8M'], { env: { ...process.env, E2FSPROGS_FAKE_TIME: '1700000000' } });
  }

  const repo = join(work, 'repo-local');
  await fs.mkdir(repo);
  targets.push({ name: 'local', session: await openSession(local, repo), device: local, rootfs: join(repo, '.sovereign/device/vm/sql/rootfs.img') });

  sshd = await startSshdDevice({ path: `${shim}:/usr/sbin:/usr/bin:/sbin:/bin` });
  targets.push({ name: 'ssh', session: await openSession(sshd.device, join(work, 'repo-local')), device: sshd.device, rootfs: join(sshd.root, 'vm/sql/rootfs.img') });

  const fake = join(work, 'adb-device');
  await fs.mkdir(join(fake, 'data/local/tmp'), { recursive: true });
  await fs.mkdir(join(work, 'bin'));
  await fs.symlink(fileURLToPath(new URL('../support/adb-standin', import.meta.url)), join(work, 'bin', 'adb'));
  process.env.PATH = `${join(work, 'bin')}:${process.env.PATH}`;
  Object.assign(process.env, { ADB_STANDIN_ROOT: fake, ADB_STANDIN_LOG: join(work, 'adb.log'), ADB_STANDIN_DEVICES: 'R5CT0001 device' });
  targets.push({ name: 'adb', session: await openSession(phone, join(work, 'repo-local')), device: phone, rootfs: join(fake, 'data/sovereign/vm/sql/rootfs.img') });
});

test.after(async () => {
  for (const t of targets) await t.session.close().catch(() => undefined);
  await sshd?.cleanup();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

/** Runs push-rootfs of image `v` on target `t` the way the engine does: check, then run. */
async function push(t: Target, v: number, o: { root?: string; signal?: AbortSignal; verify?: boolean } = {}) {
  const dep = await fileDep('sql:rootfs', 'rootfs.img', img[v]);
  const make = () => fakeContext({ step: pushRootfs, service, device: t.device, session: t.session, root: o.root ?? join(work, `repo-${t.name}`), deps: [dep], signal: o.signal, flags: { verify: o.verify } });
  const { ctx, logs } = make();
  const reason = await pushRootfs.check!(ctx);
  const result = reason === true ? undefined : await pushRootfs.run!(ctx);
  return { reason, bytes: result ? result.bytes! : 0, note: result ? result.note : undefined, logs, upToDate: (await pushRootfs.check!(make().ctx)) === true };
}

const manifestOf = async (t: Target) => JSON.parse(await fs.readFile(join(t.rootfs, '../manifest.json'), 'utf8')).files['rootfs.img'];
const temps = async (t: Target) => (await fs.readdir(join(t.rootfs, '..'))).filter((n) => n.includes('.sov-tmp-'));

for (const name of ['local', 'ssh', 'adb']) {
  test(`${name}: first push is full; a one-line change and an added file send only new blocks; the result is byte-identical; no change sends nothing`, async () => {
    const t = targets.find((x) => x.name === name)!;
    const size = (await fs.stat(img[1])).size;
    const first = await push(t, 1);
    assert.match(first.reason as string, /never pushed/);
    assert.is(first.bytes, size, 'first push: the whole image');
    assert.match(first.note!, /full push: nothing on the device/);

    const second = await push(t, 2);
    assert.match(second.reason as string, /changed .*; delta push against the device's/, 'the plan (and --dry-run) says delta');
    assert.match(second.note!, /^delta push: \d+ of \d+ bytes sent/);
    assert.ok(second.bytes > 0 && second.bytes <= 64 << 10, `one-line change sent ${second.bytes} bytes`);
    assert.is(await sha256File(t.rootfs), await sha256File(img[2]), 'assembled image is byte-identical');
    assert.is((await manifestOf(t)).sha256, await sha256File(img[2]));
    assert.ok(second.upToDate, 'checked again: up to date');

    const third = await push(t, 3);
    assert.ok(third.bytes < 320 << 10, `an added 256 KiB file sent ${third.bytes} bytes`);
    assert.is(await sha256File(t.rootfs), await sha256File(img[3]));
    assert.is((await push(t, 3)).bytes, 0, 'no change: nothing sent');
    assert.equal(await temps(t), [], 'no temp files left');
  });
}

test('a corrupted or missing old image on the device, or no index here: full push, with the reason in the plan and the summary', async () => {
  for (const t of targets.filter((x) => x.name !== 'adb')) {
    const size = (await fs.stat(img[1])).size;
    await push(t, 1);
    // Same size, one byte changed inside big.bin's data (blocks the delta reuses): only the assembled file's sha256 can tell.
    const at = (await fs.readFile(t.rootfs)).indexOf((await fs.readFile(join(work, 'tree/big.bin'))).subarray(0, 4096));
    assert.ok(at > 0);
    const fh = await fs.open(t.rootfs, 'r+');
    await fh.write(Buffer.from('X'), 0, 1, at + 100);
    await fh.close();
    const corrupt = await push(t, 2, { verify: true });
    assert.match(corrupt.reason as string, /; full push: rootfs.img on the device is not what its manifest records \(--verify\)/, `${t.name}: --verify plans it`);
    assert.is(corrupt.bytes, size, `${t.name}: corrupted old image: full push`);
    assert.match(corrupt.note!, /full push: rootfs.img on the device is not what its manifest records/);
    assert.is(await sha256File(t.rootfs), await sha256File(img[2]));

    await fs.rm(t.rootfs);
    const missing = await push(t, 3);
    assert.match(missing.reason as string, /; full push: rootfs.img is missing on the device/, `${t.name}: the plan (--dry-run) says so`);
    assert.match(missing.note!, /full push: rootfs.img is missing on the device/);
    assert.is(missing.bytes, size, `${t.name}: missing old image: full push`);
    assert.is(await sha256File(t.rootfs), await sha256File(img[3]));

    assert.equal(await temps(t), []);
  }
  const t = targets[0];
  const elsewhere = await push(t, 1, { root: join(work, 'another-clone') });
  assert.match(elsewhere.reason as string, /full push: no block index of the device's/, 'a clone without the index says so in its plan');
  assert.is(elsewhere.bytes, (await fs.stat(img[1])).size);
});

for (const name of ['local', 'ssh', 'adb']) {
  test(`${name}: a delta push killed while the device verifies the assembled file leaves the old image, its manifest entry marked as being replaced; the next push is a delta and cleans up`, async () => {
    const t = targets.find((x) => x.name === name)!;
    await push(t, 1);
    const before = await manifestOf(t);
    // The device's next sha256sum (the stand-in, see test.before) announces itself and hangs: the kill lands after the
    // new file is assembled, before it is trusted.
    await fs.writeFile(hang.armed, '');
    const abort = new AbortController();
    const pushing = push(t, 2, { signal: abort.signal }).then(() => undefined, (e: unknown) => e);
    for (let i = 0; i < 600 && !(await fs.stat(hang.pid).catch(() => undefined)); i++) await new Promise((r) => setTimeout(r, 50));
    const pid = Number(await fs.readFile(hang.pid, 'utf8').catch(() => ''));
    assert.ok(pid > 0, 'the assembly reached its hash check');
    abort.abort();
    assert.instance(await pushing, Cancelled);
    // Over ssh the device's shell outlives the client: end the stand-in we started, as a reboot of the device would.
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone with the local shell */ }
    await fs.rm(hang.pid);

    assert.is(await sha256File(t.rootfs), await sha256File(img[1]), 'old image intact');
    // Still the basis of the next delta, but no longer vouching for the file (the kill could have come after the rename).
    assert.equal(await manifestOf(t), { ...before, replacing: true }, 'manifest names the old image, marked as being replaced');
    const next = await push(t, 2);
    assert.match(next.reason as string, /an earlier push of rootfs.img was interrupted; delta push against/);
    assert.match(next.note!, /^delta push/);
    assert.is(await sha256File(t.rootfs), await sha256File(img[2]));
    assert.equal(await manifestOf(t), { sha256: await sha256File(img[2]), size: before.size }, 'manifest vouches for the new image');
    assert.equal(await temps(t), [], 'debris of the killed push removed');
  });
}

test.run();
