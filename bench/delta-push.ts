// Manual benchmark: bytes sent and push time of rootfs.img, full vs delta, on the local device and over ssh (sshd in a netns).
// Builds the real vm/sql rootfs, then (a) a one-line init.sh change, (b) one added Debian package (`less`), (c) no change.
// Each row: bytes sent and time, and both as a ratio of the full push measured on the same device in the same run.
// For (b) it also prints how much file content really differs between the two images (the floor for any delta).
// Usage (as root, reaches Debian's mirror): node --import tsx bench/delta-push.ts [--no-package]   (skips (b): no second docker build)
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Device } from '../lib/config.ts';
import { openSession } from '../lib/device/session.ts';
import { buildBase } from '../lib/build/base.ts';
import { buildImage, exportImage } from '../lib/build/builder.ts';
import { buildRootfs } from '../lib/build/rootfs.ts';
import { pushRootfs } from '../tasks/push.ts';
import { fakeContext, fileDep, sha256File, testService } from '../test/support/device-context.ts';
import { startDockerd } from '../test/support/dockerd.ts';
import { startSshdDevice } from '../test/support/sshd-netns.ts';
import { changedContent } from './support/image-diff.ts';

const repo = resolve(import.meta.dirname, '..');
const withPackage = !process.argv.includes('--no-package');
const work = await fs.mkdtemp(join(tmpdir(), `sov-bench-delta-${process.pid}-`));
const dockerd = await startDockerd();
process.env.DOCKER_HOST = dockerd.host;
const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
const log = (l: string) => console.log(l);

/** vm/sql's build context, copied so the bench can change init.sh and the Dockerfile without touching the repo. */
async function image(name: string, base: string, dockerfile: string): Promise<string> {
  const ctx = join(work, `ctx-${name}`);
  await fs.cp(join(repo, 'vm/sql'), ctx, { recursive: true });
  await fs.writeFile(join(ctx, 'Dockerfile'), dockerfile);
  const id = await buildImage({ kind: 'docker', dockerfile: join(ctx, 'Dockerfile'), context: ctx, buildArgs: { BASE_IMAGE: base }, tag: `sovereign-sql:bench-${name}` });
  const tar = join(work, `image-${name}.tar`);
  await exportImage('docker', id, tar);
  return tar;
}

async function rootfs(name: string, tar: string, initSh: string): Promise<string> {
  const init = join(work, `init-${name}.sh`);
  await fs.writeFile(init, initSh);
  const out = join(work, `rootfs-${name}.img`);
  const t = Date.now();
  await buildRootfs({ tar, out, sizeBytes: 512 * 1024 * 1024, initSh: init, initLib: join(repo, 'vm/common/init-lib.sh'), workDir: work, seed: 'sovereign-rootfs-sql' });
  log(`built rootfs ${name} in ${secs(Date.now() - t)}`);
  return out;
}

const sshd = await startSshdDevice();
try {
  let t = Date.now();
  const base = await buildBase({ kind: 'docker', suite: 'bookworm', variant: 'minbase', arch: 'x86_64', tag: 'sovereign-base-sql:bench', workDir: work });
  const dockerfile = await fs.readFile(join(repo, 'vm/sql/Dockerfile'), 'utf8');
  const tar0 = await image('v0', base, dockerfile);
  log(`base + image in ${secs(Date.now() - t)}`);
  const init = await fs.readFile(join(repo, 'vm/sql/init.sh'), 'utf8');
  const changedInit = init.replace(/\n/, '\n# bench: a one-line change\n');
  const images: Array<[string, string]> = [['full push (first deploy)', await rootfs('v0', tar0, init)], ['(a) one-line init.sh change', await rootfs('a', tar0, changedInit)]];
  if (withPackage) {
    t = Date.now();
    const tarB = await image('b', base, dockerfile.replace('postgresql kmod mount iproute2', 'postgresql kmod mount iproute2 less'));
    log(`image with less in ${secs(Date.now() - t)}`);
    const diff = await changedContent(tar0, tarB, work);
    log(`(b) changes ${diff.bytes} bytes of file content in ${diff.files} files; largest: ${diff.largest.map(([p, n]) => `${p} ${n}`).join(', ')}`);
    images.push(['(b) one added package (less)', await rootfs('b', tarB, changedInit)]);
  }
  images.push(['(c) no change', images.at(-1)![1]]);

  const local: Device = { name: 'local', transport: 'local', hypervisor: 'qemu', arch: 'x86_64', root: join(work, 'device-local') };
  const rows: string[] = [];
  for (const device of [local, sshd.device]) {
    // The repo root the pushes run from (the local transport's working folder; block indexes live under it).
    const root = join(work, `repo-${device.name}`);
    await fs.mkdir(root, { recursive: true });
    const session = await openSession(device, root);
    try {
      let full = { bytes: 0, ms: 0 };
      for (const [label, img] of images) {
        const dep = await fileDep('sql:rootfs', 'rootfs.img', img);
        const { ctx } = fakeContext({ step: pushRootfs, service: testService(), device, session, root, deps: [dep] });
        const start = Date.now();
        const reason = await pushRootfs.check!(ctx);
        const r = reason === true ? { bytes: 0 } : await pushRootfs.run!(ctx);
        const ms = Date.now() - start;
        const size = dep.files['rootfs.img'].size;
        const onDevice = join(device === local ? local.root : sshd.root, 'vm/sql/rootfs.img');
        const same = (await sha256File(onDevice)) === dep.files['rootfs.img'].sha256;
        const bytes = r?.bytes ?? 0;
        if (!full.bytes) full = { bytes, ms };
        const ratio = (x: number, base: number) => `${(x / base).toFixed(4)}x`.padStart(9);
        rows.push(`${device.transport.padEnd(5)} ${label.padEnd(30)} ${String(bytes).padStart(10)} B ${((bytes / size) * 100).toFixed(3).padStart(8)}% ${ratio(bytes, full.bytes)} ${secs(ms).padStart(7)} ${ratio(ms, full.ms)}  ${same ? 'identical' : 'DIFFERENT'}  ${r?.note ?? (reason === true ? 'up to date' : '')}`);
        log(rows.at(-1)!);
      }
    } finally {
      await session.close();
    }
  }
  log('\ndevice case                              bytes sent   of image  vs full    time   vs full  device file  how');
  for (const r of rows) log(r);
} finally {
  await sshd.cleanup();
  await dockerd.stop();
  await fs.rm(work, { recursive: true, force: true });
}
