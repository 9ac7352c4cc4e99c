// The device session and device steps over the local transport (a directory of the repo standing in for the device).
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Device } from '../../lib/config.ts';
import type { DeviceSession } from '../../lib/device/device.ts';
import { createSession, openSession, parseManifests } from '../../lib/device/session.ts';
import { openTransport } from '../../lib/device/open.ts';
import { Cancelled, UserError } from '../../lib/error.ts';
import { exec } from '../../lib/exec.ts';
import { chmod } from '../../tasks/chmod.ts';
import { remove } from '../../tasks/remove.ts';
import { pushDataDisk, pushKernel, pushSecrets, pushStartScript } from '../../tasks/push.ts';
import { fakeContext, fileDep, hashSpy, sha256File, testService } from '../support/device-context.ts';

let repo: string;
let session: DeviceSession;
// As resolveConfig makes it: a root relative to the repo.
const device: Device = { name: 'local', transport: 'local', hypervisor: 'qemu', arch: 'x86_64', root: '.sovereign/device' };
const service = testService(['DB_PASSWORD']);
let svcDir: string;

test.before(async () => {
  repo = await fs.mkdtemp(join(tmpdir(), 'sov-local-test-'));
  session = await openSession(device, repo);
  svcDir = join(repo, '.sovereign/device/vm/sql');
});
test.after(async () => {
  await session?.close();
  if (repo) await fs.rm(repo, { recursive: true, force: true });
});

const ctxFor = (step: typeof pushKernel, o: Partial<Parameters<typeof fakeContext>[0]> = {}) =>
  fakeContext({ step, service, device, session, root: repo, ...o });

test('the device root is resolved against the repo root; small-file operations', async () => {
  assert.is(session.serviceDir('sql'), svcDir);
  const f = join(svcDir, 'note.bin');
  assert.not.ok(await session.exists(f));
  assert.is(await session.readFile(f), undefined);
  assert.is(await session.sha256(f), undefined);
  assert.is(await session.mode(f), undefined);
  assert.equal(await session.readFrom(f, 0), Buffer.alloc(0), 'absent log reads as empty');
  const data = Buffer.from('line one\nbinary \0\xff\nend "quotes" \'and\' $(not run)\n', 'latin1');
  await session.writeFile(f, data, 0o640);
  assert.ok(await session.exists(f));
  assert.equal(await session.readFile(f), data);
  assert.is(await session.mode(f), 0o640);
  assert.is((await fs.stat(f)).mode & 0o777, 0o640);
  assert.is(await session.sha256(f), await sha256File(f));
  assert.equal(await session.readFrom(f, 9), data.subarray(9), 'from an offset');
  assert.equal(await session.readFrom(f, data.length), Buffer.alloc(0), 'at the end');
  const r = await session.run('cat; echo " and $0"', { input: 'from stdin' });
  assert.match(r.stdout, /^from stdin and /);
});

test('push-kernel: pushed, recorded, skipped when the manifest matches, re-pushed when the artifact changes', async () => {
  const kernel = join(repo, 'kernel');
  await fs.writeFile(kernel, 'kernel v1');
  let dep = await fileDep('sql:kernel', 'kernel', kernel);
  const { ctx, logs } = ctxFor(pushKernel, { deps: [dep] });
  assert.is(pushKernel.deps({ service, device, config: ctx.config }).join(), 'sql:kernel');
  assert.match((await pushKernel.check!(ctx)) as string, /never pushed/);
  await pushKernel.run!(ctx);
  assert.match(logs.join('\n'), /pushed kernel/);
  assert.is(await fs.readFile(join(svcDir, 'kernel'), 'utf8'), 'kernel v1');
  assert.is(await pushKernel.check!(ctx), true);

  await fs.writeFile(kernel, 'kernel v2');
  dep = await fileDep('sql:kernel', 'kernel', kernel);
  assert.match((await pushKernel.check!(ctxFor(pushKernel, { deps: [dep] }).ctx)) as string, /changed/);
  await pushKernel.run!(ctxFor(pushKernel, { deps: [dep] }).ctx);
  assert.is(await fs.readFile(join(svcDir, 'kernel'), 'utf8'), 'kernel v2');
  const manifest = JSON.parse(await fs.readFile(join(svcDir, 'manifest.json'), 'utf8'));
  assert.is(manifest.files.kernel.sha256, dep.files.kernel.sha256);

  // Deleted on the device behind the manifest's back: the check notices.
  await fs.rm(join(svcDir, 'kernel'));
  assert.match((await pushKernel.check!(ctxFor(pushKernel, { deps: [dep] }).ctx)) as string, /missing/);
});

test('an interrupted push leaves the previous file in place', async () => {
  const big = join(repo, 'big.img');
  await exec('sh', ['-c', 'head -c 209715200 /dev/urandom > "$1"', 'sh', big]);
  const target = join(svcDir, 'rootfs.img');
  await fs.writeFile(target, 'previous');
  const abort = new AbortController();
  // Abort as soon as the temp file has bytes in it: mid-copy.
  const watcher = (async () => {
    for (let i = 0; i < 5000 && !abort.signal.aborted; i++) {
      const tmp = (await fs.readdir(svcDir)).find((n) => n.startsWith('.rootfs.img.sov-tmp-'));
      if (tmp && (await fs.stat(join(svcDir, tmp)).then((s) => s.size, () => 0)) > 0) { abort.abort(); return true; }
      await new Promise((r) => setTimeout(r, 1));
    }
    return false;
  })();
  const failure = await session.push(big, target, { signal: abort.signal }).then(() => undefined, (e: unknown) => e);
  const sawTemp = await watcher;
  abort.abort();
  if (!sawTemp) console.log('  (the copy finished before the watcher saw it; atomicity still checked below)');
  if (sawTemp) {
    assert.instance(failure, Cancelled);
    assert.is(await fs.readFile(target, 'utf8'), 'previous', 'old file intact');
    assert.equal((await fs.readdir(svcDir)).filter((n) => n.includes('sov-tmp')), [], 'temp removed');
  }
  await session.push(big, target);
  assert.is(await sha256File(target), await sha256File(big));
  assert.equal((await fs.readdir(svcDir)).filter((n) => n.includes('sov-tmp')), []);
  await fs.rm(big);
  await fs.rm(target);
});

test('push-data-disk: only when absent; --force keeps it; --fresh-data asks, and replaces only when confirmed', async () => {
  const disk = join(repo, 'data.img');
  await exec('truncate', ['-s', '256M', disk]);
  await exec('mkfs.ext4', ['-q', '-F', disk]);
  const dep = await fileDep('sql:data-disk', 'data.img', disk);
  const remote = join(svcDir, 'data.img');
  assert.match((await pushDataDisk.check!(ctxFor(pushDataDisk, { deps: [dep] }).ctx)) as string, /not on the device/);
  await pushDataDisk.run!(ctxFor(pushDataDisk, { deps: [dep] }).ctx);
  const st = await fs.stat(remote);
  assert.is(st.size, 256 * 1024 * 1024);
  assert.ok(st.blocks * 512 < 64 * 1024 * 1024, 'sparse on the device');
  assert.is(await sha256File(remote), dep.files['data.img'].sha256);

  // The user's data lands in the device copy.
  await fs.appendFile(remote, 'USER DATA');
  const userSha = await sha256File(remote);
  const spy = hashSpy(session);
  assert.is(await pushDataDisk.check!(ctxFor(pushDataDisk, { deps: [dep], session: spy.session, flags: { verify: true } }).ctx), true, 'present: up to date');
  assert.equal(spy.hashed, [], '--verify hashes nothing of data.img (user data) on the device');
  const forced = ctxFor(pushDataDisk, { deps: [dep], flags: { force: true } });
  await pushDataDisk.run!(forced.ctx);
  assert.is(await sha256File(remote), userSha, '--force never replaces it');
  assert.equal(forced.questions, []);

  const declined = ctxFor(pushDataDisk, { deps: [dep], flags: { freshData: true }, confirm: false });
  assert.match((await pushDataDisk.check!(declined.ctx)) as string, /fresh-data/);
  const e = await pushDataDisk.run!(declined.ctx).then(() => undefined, (x: unknown) => x);
  assert.instance(e, UserError);
  assert.is(declined.questions.length, 1);
  assert.is(await sha256File(remote), userSha, 'not confirmed: kept');

  await pushDataDisk.run!(ctxFor(pushDataDisk, { deps: [dep], flags: { freshData: true }, confirm: true }).ctx);
  assert.is(await sha256File(remote), dep.files['data.img'].sha256, 'confirmed: replaced');
  await fs.rm(disk);
});

test('push-start-script then chmod: mode checked on the device', async () => {
  const local = join(repo, 'start.sh');
  await fs.writeFile(local, '#!/bin/sh\n', { mode: 0o644 });
  const dep = await fileDep('sql:start-script', 'start.sh', local);
  await pushStartScript.run!(ctxFor(pushStartScript, { deps: [dep] }).ctx);
  const c = ctxFor(chmod);
  assert.equal(chmod.deps({ service, device, config: c.ctx.config }), ['sql:push-start-script']);
  assert.match((await chmod.check!(c.ctx)) as string, /644/);
  await chmod.run!(c.ctx);
  assert.is((await fs.stat(join(svcDir, 'start.sh'))).mode & 0o777, 0o755);
  assert.is(await chmod.check!(c.ctx), true);
});

test('push-secrets: 0600 file of the declared keys, NUL-padded; no manifest entry', async () => {
  const { ctx } = ctxFor(pushSecrets, { secrets: { DB_PASSWORD: "pa ss'word" } });
  assert.equal(pushSecrets.deps({ service, device, config: ctx.config }), []);
  await pushSecrets.run!(ctx);
  const file = join(svcDir, 'secrets.env');
  const body = await fs.readFile(file);
  assert.is((await fs.stat(file)).mode & 0o777, 0o600);
  assert.is(body.length, 4096);
  assert.is(body.toString('utf8').replace(/\0+$/, ''), "DB_PASSWORD=pa ss'word\n");
  assert.is(await pushSecrets.check!(ctx), true);
  await fs.chmod(file, 0o644);
  assert.match((await pushSecrets.check!(ctx)) as string, /mode 644/);
  const manifest = await fs.readFile(join(svcDir, 'manifest.json'), 'utf8');
  assert.not.match(manifest, 'secrets');
});

test('spawnDetached returns at once; the process runs on and is seen dead once killed', async () => {
  const t0 = Date.now();
  const pid = await session.spawnDetached('echo up; exec sleep 30', { cwd: svcDir, log: 'console.log', pidFile: 'vm.pid' });
  assert.ok(Date.now() - t0 < 3000);
  assert.ok(await session.isAlive(pid));
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && (await session.isAlive(pid)); i++) await new Promise((r) => setTimeout(r, 50));
  assert.not.ok(await session.isAlive(pid), 'dead (a zombie counts as dead)');
  assert.is(await fs.readFile(join(svcDir, 'console.log'), 'utf8'), 'up\n');
});

test('manifests: every service\'s in one device command, asked at once or not; a push updates the one served', async () => {
  const root = join(repo, 'many');
  const files = (sha: string) => ({ files: { kernel: { sha256: sha, size: 1 } } });
  for (const [svc, body] of [['a', JSON.stringify(files('a'.repeat(64)))], ['b c', JSON.stringify(files('b'.repeat(64)))], ['bad', '{not json']] as const) {
    await fs.mkdir(join(root, 'vm', svc), { recursive: true });
    await fs.writeFile(join(root, 'vm', svc, 'manifest.json'), body);
  }
  await fs.mkdir(join(root, 'vm', 'none'));
  // Bytes that are not UTF-8 (a damaged file) before a good one: each manifest is cut out by its exact byte count.
  await fs.mkdir(join(root, 'vm', '0bin'), { recursive: true });
  await fs.writeFile(join(root, 'vm', '0bin', 'manifest.json'), Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x0a, 0x2e, 0x0a]));
  // A folder and a dangling link by that name (made by hand on the device), the link first in glob order: neither
  // stops the others' reads.
  await fs.mkdir(join(root, 'vm', '00link'), { recursive: true });
  await fs.symlink('/nonexistent/manifest.json', join(root, 'vm', '00link', 'manifest.json'));
  await fs.mkdir(join(root, 'vm', '01dir', 'manifest.json'), { recursive: true });
  const transport = await openTransport(device, repo);
  let runs = 0;
  const s = createSession({ ...transport, run: (script, o) => { runs++; return transport.run(script, o); } }, device, root);
  const [a, a2, bc, bad, none, unknown, bin] = await Promise.all(['a', 'a', 'b c', 'bad', 'none', 'zz', '0bin'].map((svc) => s.manifest(svc)));
  assert.is(runs, 1, 'one device command');
  assert.equal(bin, { files: {} }, 'binary garbage: nothing known pushed');
  for (const odd of await Promise.all(['00link', '01dir'].map((svc) => s.manifest(svc)))) assert.equal(odd, { files: {} });
  assert.is(a, a2);
  assert.equal(a, files('a'.repeat(64)));
  assert.equal(bc, files('b'.repeat(64)), 'a name with a space');
  for (const m of [bad, none, unknown]) assert.equal(m, { files: {} }, 'corrupt or missing: nothing known pushed');
  await s.recordPush('a', 'start.sh', { sha256: 'c'.repeat(64), size: 2 });
  assert.equal((await s.manifest('a')).files['start.sh'], { sha256: 'c'.repeat(64), size: 2 });
  assert.equal(JSON.parse(await fs.readFile(join(root, 'vm', 'a', 'manifest.json'), 'utf8')), await s.manifest('a'));
  // A manifest that changes between the sizes and the bytes (another deploy to this device): an error, never a
  // manifest cut at the wrong place; not remembered, so the next ask reads again.
  assert.throws(() => parseManifests(' 10 a/manifest.json\n.\n' + Buffer.from('{"files":{}}').toString('base64')), /changed while they were read/);
  // No vm folder on the device at all: nothing pushed anywhere.
  const empty = createSession(transport, device, join(repo, 'nothing-here'));
  assert.equal(await empty.manifest('a'), { files: {} });
  await s.close();
});

test('remove deletes the manifest on the device and in the session: a later push in the same run starts from nothing pushed', async () => {
  const kernel = join(repo, 'kernel-rm');
  await fs.writeFile(kernel, 'kernel to remove');
  const dep = await fileDep('sql:kernel', 'kernel', kernel);
  await pushKernel.run!(ctxFor(pushKernel, { deps: [dep] }).ctx);
  assert.ok((await session.manifest('sql')).files.kernel, 'recorded');
  await remove.run!(ctxFor(remove).ctx);
  assert.not.ok(await session.exists(join(svcDir, 'manifest.json')), 'manifest gone on the device');
  assert.equal(await session.manifest('sql'), { files: {} }, 'and in the session');
  assert.match((await pushKernel.check!(ctxFor(pushKernel, { deps: [dep] }).ctx)) as string, /never pushed/);
});

test.run();
