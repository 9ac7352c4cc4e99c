// The device session over a real OpenSSH connection to sshd in its own network namespace.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { DeviceSession } from '../../lib/device/device.ts';
import { openSession } from '../../lib/device/session.ts';
import { Cancelled } from '../../lib/error.ts';
import { exec } from '../../lib/exec.ts';
import { sparseIdentity } from '../../lib/extents.ts';
import { renderSecretsFile } from '../../lib/secrets.ts';
import { pushDataDisk, pushRootfs, pushSecrets, pushStartScript } from '../../tasks/push.ts';
import { secretForms, watchCmdlines } from '../support/cmdline-watch.ts';
import { fakeContext, fileDep, hashSpy, sha256File, testService } from '../support/device-context.ts';
import { startSshdDevice } from '../support/sshd-netns.ts';
import { bytesRead } from '../support/read-bytes.ts';
import type { SshdDevice } from '../support/sshd-netns.ts';

let fx: SshdDevice;
let session: DeviceSession;
let work: string;
const service = testService(['API_TOKEN']);
let svcDir: string;

test.before(async () => {
  fx = await startSshdDevice();
  work = await fs.mkdtemp(join(tmpdir(), 'sov-ssh-test-'));
  session = await openSession(fx.device, work);
  svcDir = join(fx.root, 'vm', 'sql');
});

test.after(async () => {
  await session?.close().catch(() => undefined);
  await fx?.cleanup();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

const ctxFor = (step: typeof pushRootfs, deps: Parameters<typeof fakeContext>[0]['deps'], extra: Partial<Parameters<typeof fakeContext>[0]> = {}) =>
  fakeContext({ step, service, device: fx.device, session, root: work, deps, ...extra });

test('push: content, mode and manifest on the device; the same content again is skipped by check', async () => {
  const local = join(work, 'start.sh');
  await fs.writeFile(local, '#!/bin/sh\necho start\n', { mode: 0o750 });
  await fs.chmod(local, 0o750);
  const dep = await fileDep('sql:start-script', 'start.sh', local);
  const { ctx, progress } = ctxFor(pushStartScript, [dep]);
  assert.type(await pushStartScript.check!(ctx), 'string', 'nothing pushed yet: must run');
  await pushStartScript.run!(ctx);
  const remote = join(svcDir, 'start.sh');
  assert.is(await fs.readFile(remote, 'utf8'), '#!/bin/sh\necho start\n');
  assert.is((await fs.stat(remote)).mode & 0o777, 0o750);
  const manifest = JSON.parse(await fs.readFile(join(svcDir, 'manifest.json'), 'utf8'));
  assert.equal(manifest.files['start.sh'], { sha256: dep.files['start.sh'].sha256, size: dep.files['start.sh'].size });
  assert.ok(progress.length > 0 && progress.at(-1)![0] === dep.files['start.sh'].size, 'bytes reported');
  assert.is(await pushStartScript.check!(ctx), true, 'same session: up to date');

  // A new session reads the manifest from the device afresh.
  const again = await openSession(fx.device, work);
  try {
    assert.is(await pushStartScript.check!(ctxFor(pushStartScript, [dep], { session: again }).ctx), true, 'new session: up to date');
    // --verify re-hashes on the device: a file changed behind the manifest's back is caught.
    await fs.appendFile(remote, '# tampered\n');
    assert.is(await pushStartScript.check!(ctxFor(pushStartScript, [dep], { session: again }).ctx), true, 'without --verify the manifest is trusted');
    const verify = await pushStartScript.check!(ctxFor(pushStartScript, [dep], { session: again, flags: { verify: true } }).ctx);
    assert.type(verify, 'string');
    assert.match(verify as string, /--verify/);
  } finally {
    await again.close();
  }
});

test('an interrupted push leaves the old file intact and records nothing; the next push completes', async () => {
  const small = join(work, 'rootfs-old.img');
  const big = join(work, 'rootfs-new.img');
  await fs.writeFile(small, 'old rootfs\n');
  await exec('sh', ['-c', 'head -c 314572800 /dev/urandom > "$1"', 'sh', big]);
  const oldDep = await fileDep('sql:rootfs', 'rootfs.img', small);
  const newDep = await fileDep('sql:rootfs', 'rootfs.img', big);
  await pushRootfs.run!(ctxFor(pushRootfs, [oldDep]).ctx);
  const remote = join(svcDir, 'rootfs.img');
  const oldSha = oldDep.files['rootfs.img'].sha256;

  const abort = new AbortController();
  let abortedAt = 0;
  const { ctx } = fakeContext({
    step: pushRootfs, service, device: fx.device, session, root: work, deps: [newDep], signal: abort.signal,
  });
  const progress = ctx.progress;
  ctx.progress = (done, total, label) => {
    progress(done, total, label);
    if (done > 60 * 1024 * 1024 && !abortedAt) { abortedAt = done; abort.abort(); }
  };
  const t0 = Date.now();
  const failure = await pushRootfs.run!(ctx).then(() => undefined, (e: unknown) => e);
  console.log(`  aborted after ${abortedAt} bytes, ${Date.now() - t0} ms`);
  assert.instance(failure, Cancelled, 'the push was stopped');
  assert.ok(abortedAt > 0 && abortedAt < newDep.files['rootfs.img'].size, 'stopped midway');
  assert.is(await sha256File(remote), oldSha, 'old file intact');
  const leftovers = (await fs.readdir(svcDir)).filter((n) => n.includes('sov-tmp'));
  assert.equal(leftovers, [], 'no temp file left behind');
  assert.is((await session.manifest('sql')).files['rootfs.img'].sha256, oldSha, 'manifest still names the old file');
  const reason = await pushRootfs.check!(ctxFor(pushRootfs, [newDep]).ctx);
  assert.type(reason, 'string', 'still to do');

  const t1 = Date.now();
  await pushRootfs.run!(ctxFor(pushRootfs, [newDep]).ctx);
  console.log(`  300 MB push over ssh: ${Date.now() - t1} ms`);
  assert.is(await sha256File(remote), newDep.files['rootfs.img'].sha256, 'new file complete');
  assert.is(await pushRootfs.check!(ctxFor(pushRootfs, [newDep]).ctx), true);
  await fs.rm(big);
});

test('a sparse 4 GiB data disk crosses the wire as its data, not 4 GiB; its identity and --verify never read the holes', async () => {
  const disk = join(work, 'data.img');
  await exec('truncate', ['-s', '4G', disk]);
  await exec('mkfs.ext4', ['-q', '-F', '-L', 'data', disk]);
  // As create-once records it: the recipe key, not the bytes (user data).
  const dep = { task: 'sql:data-disk', outputHash: 'x', files: { 'data.img': { sha256: 'f'.repeat(64), size: 4 * 1024 ** 3, path: disk } } };
  const readBefore = bytesRead();
  const before = await fx.wireBytes();
  const t0 = Date.now();
  await pushDataDisk.run!(ctxFor(pushDataDisk, [dep]).ctx);
  const wire = (await fx.wireBytes()) - before;
  console.log(`  4 GiB sparse data disk: ${(wire / 1024).toFixed(0)} KiB on the wire, ${Date.now() - t0} ms`);
  assert.ok(wire < 64 * 1024 * 1024, `sent ${wire} bytes`);
  const read = bytesRead() - readBefore;
  assert.ok(read < 256 * 1024 * 1024, `the push read ${read} bytes of the 4 GiB disk here (its identity must skip the holes)`);
  const remote = join(svcDir, 'data.img');
  const st = await fs.stat(remote);
  assert.is(st.size, 4 * 1024 ** 3, 'full size');
  assert.ok(st.blocks * 512 < 512 * 1024 * 1024, 'still sparse on the device');
  const id = await sparseIdentity(disk);
  assert.is(await sparseIdentity(remote), id, 'same data at the same offsets');
  const manifest = JSON.parse(await fs.readFile(join(svcDir, 'manifest.json'), 'utf8'));
  assert.equal(manifest.files['data.img'], { sha256: id, size: 4 * 1024 ** 3, identity: 'sparse-v1' }, 'the manifest records its sparse identity');
  // --verify re-hashes pushed artifacts on the device, never the user's data disk (it changes as the VM runs).
  const spy = hashSpy(session);
  assert.is(await pushDataDisk.check!(ctxFor(pushDataDisk, [dep], { session: spy.session, flags: { verify: true } }).ctx), true, 'present: never pushed again');
  assert.equal(spy.hashed, [], '--verify hashes nothing of data.img on the device');
  await fs.rm(disk);
  await fs.rm(remote);

  // The counter does see pushed bytes: a dense 8 MiB file costs at least 8 MiB.
  const dense = join(work, 'dense.bin');
  await fs.writeFile(dense, randomBytes(8 * 1024 * 1024));
  const b2 = await fx.wireBytes();
  await session.push(dense, join(svcDir, 'dense.bin'));
  assert.ok((await fx.wireBytes()) - b2 > 8 * 1024 * 1024, 'dense bytes counted');
});


test('spawnDetached returns at once over ssh and the process keeps running', async () => {
  const t0 = Date.now();
  const pid = await session.spawnDetached('echo booting; exec sleep 30', { cwd: svcDir, log: 'console.log', pidFile: 'vm.pid' });
  const took = Date.now() - t0;
  console.log(`  spawnDetached: ${took} ms`);
  assert.ok(took < 5000, `took ${took} ms`);
  try {
    assert.is(Number(await fs.readFile(join(svcDir, 'vm.pid'), 'utf8')), pid, 'pid file');
    assert.ok(await session.isAlive(pid), 'running');
    assert.match((await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')), 'sleep');
    let log = '';
    for (let i = 0; i < 50 && !log.includes('booting'); i++) { log = (await session.readFrom(join(svcDir, 'console.log'), 0)).toString(); await new Promise((r) => setTimeout(r, 50)); }
    assert.is(log, 'booting\n');
    assert.is((await session.readFrom(join(svcDir, 'console.log'), 4)).toString(), 'ing\n', 'incremental read from an offset');
  } finally {
    await session.run(`kill ${pid}`, { nothrow: true });
  }
  for (let i = 0; i < 50 && (await session.isAlive(pid)); i++) await new Promise((r) => setTimeout(r, 50));
  assert.not.ok(await session.isAlive(pid), 'stopped');
});

test('secrets: 0600 file with the declared keys, never on any argument list, compared by content', async () => {
  const secret = `s3cr3t-${process.pid}-${Date.now()}`;
  // The watcher itself must be able to see a secret on an argument list.
  const probe = watchCmdlines(secret);
  await exec('sh', ['-c', 'sleep 0.3', secret]);
  assert.ok(probe.stop().length > 0, 'watcher sees argv');

  const watch = watchCmdlines(secretForms(secret));
  const { ctx } = ctxFor(pushSecrets, [], { secrets: { API_TOKEN: secret } });
  assert.type(await pushSecrets.check!(ctx), 'string');
  for (let i = 0; i < 5; i++) await pushSecrets.run!(ctx);
  const hits = watch.stop();
  assert.ok(watch.scans() > 10, `scanned ${watch.scans()} times`);
  assert.is(hits.length, 0, `the secret was seen on ${hits.length} argument lists`);
  const remote = join(svcDir, 'secrets.env');
  assert.is((await fs.stat(remote)).mode & 0o777, 0o600);
  assert.ok((await fs.readFile(remote)).equals(renderSecretsFile({ API_TOKEN: secret })));
  assert.is(await pushSecrets.check!(ctx), true);
  assert.type(await pushSecrets.check!(ctxFor(pushSecrets, [], { secrets: { API_TOKEN: 'rotated' } }).ctx), 'string', 'a changed value re-pushes');
  const manifest = await fs.readFile(join(svcDir, 'manifest.json'), 'utf8');
  assert.not.match(manifest, 'secrets.env', 'no record (or hash) of the secrets');
});

test('a host key that does not match is refused (StrictHostKeyChecking from the device entry)', async () => {
  const wrongHosts = join(work, 'wrong_known_hosts');
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'other')]);
  const other = (await fs.readFile(join(work, 'other.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  await fs.writeFile(wrongHosts, `${fx.device.host} ${other}\n`);
  const s = await openSession({ ...fx.device, knownHosts: wrongHosts }, work);
  try {
    const e = await s.run('true').then(() => undefined, (x: unknown) => x as { code?: string; message: string });
    assert.ok(e, 'refused');
    assert.is(e!.code, 'environment');
  } finally {
    await s.close();
  }
});

test.run();
