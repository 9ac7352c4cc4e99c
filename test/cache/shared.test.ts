// End to end: two clean checkouts share artifacts through a real remote-cache server; the second gets rootfs.img without docker.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, promises as fs, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { checkout, repo, sovereign } from '../support/cli.ts';
import { startCacheServer, type CacheServer } from '../support/cache-server.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';

const CONFIG = `import { defineConfig } from 'sovereign';
export default defineConfig({
  services: {
    tiny: {
      displayName: 'Tiny', guestIp: '192.168.100.9', ports: [8080], readyMarker: 'TINY READY',
      rootfsSize: '16M', kernel: { path: 'vmlinuz' },
    },
  },
  cache: { remote: { url: process.env.TEST_CACHE_URL!, team: 'e2e' } },
});
`;

let server: CacheServer;
let dockerd: Dockerd;
let work: string;
const checkouts: string[] = [];

/** A `docker` first on PATH that logs each invocation, then runs the real client. */
function dockerWrapper(log: string): string {
  const real = (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'docker')).find((p) => existsSync(p));
  assert.ok(real, 'a docker client on PATH');
  const dir = join(work, 'wrapper');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'docker'), `#!/bin/sh\necho "$*" >> '${log}'\nexec '${real}' "$@"\n`);
  chmodSync(join(dir, 'docker'), 0o755);
  return dir;
}

/** A fresh checkout with a tiny FROM-scratch service (busybox), so no registry or debootstrap is involved. */
function tinyCheckout(name: string): string {
  const root = checkout(`sovereign-shared-${name}-${process.pid}-`, CONFIG);
  checkouts.push(root);
  const dir = join(root, 'vm', 'tiny');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\n');
  copyFileSync('/bin/busybox', join(dir, 'busybox'));
  copyFileSync(join(repo, 'test/fixtures/vm/tiny/init.sh'), join(dir, 'init.sh'));
  writeFileSync(join(root, 'vmlinuz'), 'not a kernel: this test builds rootfs only\n');
  return root;
}

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

function findFile(dir: string, name: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) { const f = findFile(p, name); if (f) return f; }
    else if (e.name === name) return p;
  }
  return undefined;
}

test.before(async () => {
  work = await fs.mkdtemp(join(tmpdir(), `sovereign-shared-${process.pid}-`));
  [server, dockerd] = await Promise.all([startCacheServer(), startDockerd()]);
});
test.after(async () => {
  await Promise.all([server?.stop(), dockerd?.stop()]);
  for (const c of checkouts) await fs.rm(c, { recursive: true, force: true });
  if (work) await fs.rm(work, { recursive: true, force: true });
});

test('a second clean checkout builds rootfs.img from the remote cache without docker', async () => {
  const logA = join(work, 'docker-a.log');
  const logB = join(work, 'docker-b.log');
  const env = (log: string) => ({
    PATH: `${dockerWrapper(log)}${delimiter}${process.env.PATH}`,
    DOCKER_HOST: dockerd.host, TEST_CACHE_URL: server.url, SOVEREIGN_REMOTE_CACHE_TOKEN: server.token,
  });
  const a = tinyCheckout('a');
  const runA = await sovereign(['run', 'tiny:rootfs'], { cwd: a, env: env(logA) });
  assert.is(runA.code, 0, runA.stdout + runA.stderr);
  const dockerA = readFileSync(logA, 'utf8').trim().split('\n');
  assert.ok(dockerA.some((l) => /^(image )?build\b|buildx build/.test(l)), `A built an image: ${dockerA.join(' | ')}`);
  const imgA = findFile(join(a, '.sovereign'), 'rootfs.img');
  assert.ok(imgA, 'A has rootfs.img');
  assert.ok(readdirSync(join(server.storagePath, 'e2e')).length >= 2, 'A uploaded records and blobs');

  const b = tinyCheckout('b');
  const runB = await sovereign(['run', 'tiny:rootfs'], { cwd: b, env: env(logB) });
  assert.is(runB.code, 0, runB.stdout + runB.stderr);
  // No docker at all: the image's output hash comes from its cache record (build without the bytes).
  const dockerB = existsSync(logB) ? readFileSync(logB, 'utf8').trim().split('\n').filter(Boolean) : [];
  assert.equal(dockerB, [], `B ran docker: ${dockerB.join(' | ')}`);
  const imgB = findFile(join(b, '.sovereign'), 'rootfs.img');
  assert.ok(imgB, `B has rootfs.img:\n${runB.stdout}`);
  assert.is(sha(imgB!), sha(imgA!));
  assert.is(statSync(imgB!).size, statSync(imgA!).size);
});

test.run();
