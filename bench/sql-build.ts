// Manual benchmark: a cold vm/sql build (debootstrap base, docker build, export, rootfs.img) on a private dockerd.
// Usage (as root, reaches Debian's mirror): node --import tsx bench/sql-build.ts [keep-dir]
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildBase } from '../lib/build/base.ts';
import { buildImage, exportImage } from '../lib/build/builder.ts';
import { buildRootfs } from '../lib/build/rootfs.ts';
import { startDockerd } from '../test/support/dockerd.ts';

const repo = resolve(import.meta.dirname, '..');
const keep = process.argv[2];
const work = await fs.mkdtemp(join(tmpdir(), `sov-bench-${process.pid}-`));
const dockerd = await startDockerd();
process.env.DOCKER_HOST = dockerd.host;
const times: Record<string, string> = {};
const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
  const t = Date.now();
  const v = await f();
  times[name] = `${((Date.now() - t) / 1000).toFixed(1)}s`;
  console.log(`${name}: ${times[name]}`);
  return v;
};
try {
  const base = await timed('base (mmdebstrap or debootstrap) + import', () => buildBase({ kind: 'docker', suite: 'bookworm', variant: 'minbase', arch: 'x86_64', tag: 'sovereign-base-sql:bench', workDir: work }));
  const image = await timed('docker build vm/sql', () => buildImage({
    kind: 'docker', dockerfile: join(repo, 'vm/sql/Dockerfile'), context: join(repo, 'vm/sql'), buildArgs: { BASE_IMAGE: base }, tag: 'sovereign-sql:bench',
    onLine: (l) => { if (/^Step /.test(l)) console.log(`  ${l}`); },
  }));
  const tarFile = join(work, 'image.tar');
  await timed('docker export', () => exportImage('docker', image, tarFile));
  const out = join(keep ?? work, 'rootfs.img');
  await timed('rootfs.img (512M)', () => buildRootfs({
    tar: tarFile, out, sizeBytes: 512 * 1024 * 1024, initSh: join(repo, 'vm/sql/init.sh'), initLib: join(repo, 'vm/common/init-lib.sh'), workDir: work, seed: 'sovereign-rootfs-sql',
  }));
  console.log(JSON.stringify({ ...times, tarBytes: (await fs.stat(tarFile)).size }, null, 2));
} finally {
  await dockerd.stop();
  await fs.rm(work, { recursive: true, force: true });
}
