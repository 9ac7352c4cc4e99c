// rootfs.img from a real docker image: init installed, device nodes, owners/modes/hard links kept, reproducible, size errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
import { buildImage, exportImage, imageExists, checkDaemon } from '../../lib/build/builder.ts';
import { buildRootfs } from '../../lib/build/rootfs.ts';
import { exec } from '../../lib/exec.ts';
import { UserError } from '../../lib/error.ts';
import { busyboxImage, startDockerd, type Dockerd } from '../support/dockerd.ts';

let dockerd: Dockerd;
let work: string;
let imageTar: string;
let initSh: string;

const DOCKERFILE = `ARG BASE_IMAGE
FROM \${BASE_IMAGE}
RUN mkdir -p /home/user /srv && echo hello > /home/user/owned && chown -R 1000:1000 /home/user \\
 && echo x > /srv/suid && chmod 4755 /srv/suid && ln /srv/suid /srv/suid-link \\
 && echo secret > /srv/private && chmod 0600 /srv/private && chown 0:42 /srv/private \\
 && ln -s /bin/busybox /srv/abs-link && echo q > '/srv/a "quoted" name'
`;

const sha256 = (file: string) => new Promise<string>((resolve, reject) => {
  const h = createHash('sha256');
  createReadStream(file).on('data', (c) => h.update(c)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
});

async function stat(img: string, path: string): Promise<string> {
  return (await exec('debugfs', ['-R', `stat "${path.replaceAll('"', '""')}"`, img])).stdout;
}

async function build(dir: string, sizeBytes = 64 * 1024 * 1024, tarFile = imageTar): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const out = join(dir, 'rootfs.img');
  await buildRootfs({ tar: tarFile, out, sizeBytes, initSh, workDir: dir, seed: 'sovereign-rootfs-test' });
  return out;
}

/** What the image build printed, line by line. */
const buildLines: string[] = [];

test.before(async () => {
  work = await fs.mkdtemp(join(tmpdir(), `sov-rootfs-${process.pid}-`));
  dockerd = await startDockerd();
  process.env.DOCKER_HOST = dockerd.host;
  await checkDaemon('docker');
  const base = await busyboxImage(dockerd.env, `sov-test-base:${process.pid}`);
  const ctx = join(work, 'ctx');
  await fs.mkdir(ctx);
  await fs.writeFile(join(ctx, 'Dockerfile'), DOCKERFILE);
  const id = await buildImage({ kind: 'docker', dockerfile: join(ctx, 'Dockerfile'), context: ctx, buildArgs: { BASE_IMAGE: base }, tag: `sov-test:${process.pid}`, onLine: (l) => buildLines.push(l) });
  assert.ok(await imageExists('docker', id), 'built image exists');
  imageTar = join(work, 'image.tar');
  await exportImage('docker', id, imageTar);
  initSh = join(work, 'init.sh');
  await fs.writeFile(initSh, '#!/bin/sh\necho "=== INIT COMPLETE ==="\n');
});

test.after(async () => {
  await dockerd?.stop();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

test('a docker build shows no "legacy builder is deprecated" notice (BuildKit where buildx exists, else the notice is dropped)', () => {
  assert.ok(buildLines.length > 0, 'the build streamed its output');
  assert.not.ok(buildLines.some((l) => /DEPRECATED|legacy builder|DOCKER_BUILDKIT/.test(l)), buildLines.join('\n'));
});

test('export leaves no container behind', async () => {
  const r = await exec('docker', ['ps', '-aq'], { env: dockerd.env });
  assert.is(r.stdout.trim(), '');
});

test('init.sh is installed executable and /sbin/init resolves to it', async () => {
  const img = await build(join(work, 'a'));
  const init = await stat(img, '/sbin/init.sh');
  assert.match(init, /Type: regular\s+Mode:\s+0755/);
  assert.match(init, /User:\s+0\s+Group:\s+0/);
  const link = await stat(img, '/sbin/init');
  assert.match(link, /Type: symlink/);
  assert.match(link, /Fast link dest: "init.sh"/);
  const dump = (await exec('debugfs', ['-R', 'cat /sbin/init.sh', img])).stdout;
  assert.match(dump, /INIT COMPLETE/);
  const fsck = await exec('e2fsck', ['-fn', img], { nothrow: true });
  assert.is(fsck.code, 0, fsck.stdout + fsck.stderr);
});

test('device nodes have the right numbers, mode 0666, root owner', async () => {
  const img = await build(join(work, 'b'));
  const want: Array<[string, string]> = [['/dev/console', '05:01'], ['/dev/null', '01:03'], ['/dev/zero', '01:05'], ['/dev/tty', '05:00'],
    ['/dev/random', '01:08'], ['/dev/urandom', '01:09'], ['/dev/vsock', '0a:79'], ['/dev/net/tun', '0a:c8']];
  for (const [path, nums] of want) {
    const s = await stat(img, path);
    assert.match(s, /Type: character special\s+Mode:\s+0666/, path);
    assert.match(s, /User:\s+0\s+Group:\s+0/, path);
    assert.match(s, new RegExp(`\\(hex ${nums}\\)`), `${path} ${nums}`);
  }
});

test('ownership, setuid, modes, symlinks, hard links and odd names are kept; .dockerenv dropped', async () => {
  const img = await build(join(work, 'c'));
  assert.match(await stat(img, '/home/user/owned'), /User:\s+1000\s+Group:\s+1000/);
  assert.match(await stat(img, '/home/user'), /Type: directory.*\n[\s\S]*User:\s+1000/);
  const suid = await stat(img, '/srv/suid');
  assert.match(suid, /Mode:\s+04755/);
  assert.match(suid, /Links: 2/);
  const ino = (s: string) => /Inode: (\d+)/.exec(s)?.[1];
  assert.is(ino(await stat(img, '/srv/suid-link')), ino(suid), 'hard link shares the inode');
  const priv = await stat(img, '/srv/private');
  assert.match(priv, /Mode:\s+0600/);
  assert.match(priv, /User:\s+0\s+Group:\s+42/);
  const abs = await stat(img, '/srv/abs-link'); assert.match(abs, /Fast link dest: "\/bin\/busybox"/, abs);
  assert.match(await stat(img, '/srv/a "quoted" name'), /Type: regular/);
  assert.match(await stat(img, '/bin/busybox'), /Mode:\s+0755/);
  const root = (await exec('debugfs', ['-R', 'ls /', img])).stdout;
  assert.not.match(root, /\.dockerenv/);
  assert.match(await stat(img, '/srv/suid'), /mtime: 0x386d4380/, 'fixed epoch times');
});

test('same tar, different folders and cwd: byte-identical images', async () => {
  const first = await build(join(work, 'repro-1'));
  const cwd = process.cwd();
  try {
    process.chdir(tmpdir());
    await new Promise((r) => setTimeout(r, 1100)); // a different second, so build time cannot hide
    const second = await build(join(work, 'deeper', 'repro-2'));
    assert.is(await sha256(second), await sha256(first));
  } finally {
    process.chdir(cwd);
  }
});

test('the builder\'s umask does not change the bytes', async () => {
  const first = await build(join(work, 'umask-022'));
  const old = process.umask(0o002);
  try {
    const second = await build(join(work, 'umask-002'));
    assert.is(await sha256(second), await sha256(first));
  } finally {
    process.umask(old);
  }
});

test('built as an unprivileged user: same bytes as built as root (no root needed)', async () => {
  if (process.getuid?.() !== 0) return; // the suite itself then already runs unprivileged
  const asRoot = await build(join(work, 'user-root'));
  // nobody may not enter the checkout or the temp folder (both can sit in a 0700 folder): everything it
  // needs goes into a folder of its own under /tmp — the builder bundled into one file, the tar and init.sh.
  const dir = await fs.mkdtemp(join('/tmp', `sov-rootfs-nobody-${process.pid}-`));
  try {
    await fs.chmod(dir, 0o777);
    const script = join(dir, 'build-rootfs.mjs');
    const { build: bundle } = await import('esbuild');
    await bundle({ entryPoints: [join(import.meta.dirname, '..', 'support', 'build-rootfs.ts')], outfile: script, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'silent' });
    await fs.copyFile(imageTar, join(dir, 'image.tar'));
    await fs.copyFile(initSh, join(dir, 'init.sh'));
    for (const f of [script, join(dir, 'image.tar'), join(dir, 'init.sh')]) await fs.chmod(f, 0o644);
    const opts = { tar: join(dir, 'image.tar'), out: join(dir, 'rootfs.img'), sizeBytes: 64 * 1024 * 1024, initSh: join(dir, 'init.sh'), workDir: dir, seed: 'sovereign-rootfs-test' };
    await exec('runuser', ['-u', 'nobody', '--', process.execPath, script, JSON.stringify(opts)], { cwd: dir, env: { ...process.env, HOME: dir, TMPDIR: dir } });
    assert.is((await fs.stat(opts.out)).uid, 65534, 'built by nobody');
    assert.is(await sha256(opts.out), await sha256(asRoot));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('content larger than the size: a clear error naming rootfsSize and the size needed', async () => {
  const dir = join(work, 'big');
  await fs.mkdir(join(dir, 'src'), { recursive: true });
  await fs.writeFile(join(dir, 'src', 'blob'), (await import('node:crypto')).randomBytes(24 * 1024 * 1024));
  const bigTar = join(dir, 'big.tar');
  await tar.c({ file: bigTar, cwd: join(dir, 'src') }, ['blob']);
  try {
    await build(join(dir, 'out'), 16 * 1024 * 1024, bigTar);
    assert.unreachable('should have failed');
  } catch (e) {
    assert.instance(e, UserError);
    const u = e as UserError;
    assert.match(u.message, /do not fit in a 16M rootfs: they need about \d+M/);
    assert.match(u.hint ?? '', /rootfsSize/);
  }
  assert.not.ok(await fs.access(join(dir, 'out', 'rootfs.img')).then(() => true, () => false), 'no partial image left');
  // Fits by the data check but not once the journal and tables are counted: mkfs's own failure maps to the same error.
  try {
    await build(join(dir, 'out2'), 26 * 1024 * 1024, bigTar);
    assert.unreachable('should have failed');
  } catch (e) {
    assert.match((e as Error).message, /do not fit in a 26M rootfs/);
  }
});

test.run();
