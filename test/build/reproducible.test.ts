// Reproducible from source: two clean git clones, each with its own private docker daemon and its own cold
// debootstrap base, build `sql:rootfs` at the same time (the second under umask 077) through the real CLI;
// the two rootfs.img must be byte-identical and hold no build-time key or build log.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, promises as fs, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../../lib/exec.ts';
import { repo } from '../support/cli.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';

const MIN = 60_000;
const daemons: Dockerd[] = [];
let work = '';
const images: string[] = [];

const sha256 = (file: string) => new Promise<string>((resolve, reject) => {
  const h = createHash('sha256');
  createReadStream(file).on('data', (c) => h.update(c)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
});

/** A clean clone of this repo's committed tree, bundled (its own dist/) and building sql:rootfs with its own CLI. */
async function cleanBuild(name: string, umask: string): Promise<string> {
  const dockerd = await startDockerd();
  daemons.push(dockerd);
  const root = join(work, name);
  const inUmask = ['-c', 'umask "$1"; shift; exec "$@"', 'sh', umask];
  await exec('sh', [...inUmask, 'git', 'clone', '-q', '--no-hardlinks', repo, root]);
  // The installed dependencies are shared (no registry in tests); the engine is bundled from the clone's source.
  symlinkSync(join(repo, 'node_modules'), join(root, 'node_modules'));
  await exec(process.execPath, ['scripts/build.mjs'], { cwd: root });
  const started = Date.now();
  const r = await exec('sh', [...inUmask, process.execPath, join(root, 'bin', 'sovereign.js'), 'run', 'sql:rootfs'], {
    cwd: root, env: { ...process.env, DOCKER_HOST: dockerd.host, NO_COLOR: '1' }, nothrow: true, signal: AbortSignal.timeout(30 * MIN),
  });
  assert.is(r.code, 0, `clone ${name}: sovereign run sql:rootfs exited ${r.code}\n${(r.stdout + r.stderr).trim().split('\n').slice(-30).join('\n')}`);
  console.log(`  clone ${name} (umask ${umask}): sql:rootfs in ${((Date.now() - started) / 1000).toFixed(0)}s`);
  return join(root, '.sovereign', 'out', 'sql', 'rootfs.img');
}

/** Files whose content differs between two images (both dumped with debugfs, no mount), for the failure message. */
async function differingFiles(a: string, b: string): Promise<string[]> {
  const dump = async (img: string, dir: string) => { mkdirSync(dir); await exec('debugfs', ['-R', `rdump / ${dir}`, img], { nothrow: true }); };
  await dump(a, join(work, 'dump-a'));
  await dump(b, join(work, 'dump-b'));
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(work, 'dump-a', rel), { withFileTypes: true })) {
      const p = join(rel, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        let other: Buffer | undefined;
        try { other = readFileSync(join(work, 'dump-b', p)); } catch { /* only in the first image */ }
        if (!other?.equals(readFileSync(join(work, 'dump-a', p)))) out.push(p);
      }
    }
  };
  try { walk(''); } catch (e) { out.push(`(comparison stopped: ${(e as Error).message})`); }
  return out.length ? out : ['(same file contents: metadata or layout differs)'];
}

test.before(async () => {
  if (process.getuid?.() !== 0) throw new Error('this test builds two debootstrap bases and needs root (CI runs as root)');
  for (const tool of ['debootstrap', 'dockerd', 'git', 'debugfs']) {
    if ((await exec('sh', ['-c', `command -v ${tool}`], { nothrow: true })).code !== 0) throw new Error(`${tool} is not installed: run scripts/setup-host.sh`);
  }
  work = mkdtempSync(join(tmpdir(), `sov-repro-${process.pid}-`));
});

test.after(async () => {
  for (const d of daemons) await d.stop();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

test('two clean clones, two docker daemons, two bases: byte-identical sql rootfs.img', async () => {
  images.push(...(await Promise.all([cleanBuild('a', '022'), cleanBuild('b', '077')])));
  const [a, b] = await Promise.all(images.map(sha256));
  if (a !== b) assert.unreachable(`rootfs.img differs between the clones (${a.slice(0, 12)} vs ${b.slice(0, 12)}); files: ${(await differingFiles(images[0], images[1])).slice(0, 20).join(', ')}`);
});

test('the image holds no build-time key, build log or ldconfig cache, and no build date', async () => {
  assert.ok(images[0], 'the first test built the image');
  for (const path of ['/etc/ssl/private/ssl-cert-snakeoil.key', '/etc/ssl/certs/ssl-cert-snakeoil.pem', '/var/log/bootstrap.log', '/var/log/alternatives.log', '/var/log/dpkg.log', '/var/cache/ldconfig/aux-cache']) {
    const r = await exec('debugfs', ['-R', `stat ${path}`, images[0]], { nothrow: true });
    assert.match(r.stderr, /File not found/, `${path} is in the image`);
  }
  const shadow = (await exec('debugfs', ['-R', 'cat /etc/shadow', images[0]])).stdout;
  const days = new Set(shadow.split('\n').map((l) => l.split(':')[2]).filter(Boolean));
  assert.equal([...days], ['10957'], 'every password-change day is the rootfs epoch (2000-01-01), not the build day');
});

test.run();
