// Pinned upstream images through the CLI, with Debian's docker-registry on loopback as the STAND-IN for codeberg.org
// and Docker Hub (this machine reaches neither): first fetch writes sovereign.lock.json, a tampered image is rejected
// with expected/got, a local `docker save` file verifies, a new pin rebuilds only its service, offline is exit 4.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../../lib/exec.ts';
import { checkout, sovereign } from '../support/cli.ts';
import { busyboxImage, startDockerd, type Dockerd } from '../support/dockerd.ts';
import { pushStandInImage, startRegistry, type Registry } from '../support/registry.ts';
import { mirrorPath } from '../support/standin-images.ts';

const FORGEJO = 'codeberg.org/forgejo/forgejo:11.0.15';
const VAULT = 'vaultwarden/server:1.34.3';
const VAULT_NEXT = 'vaultwarden/server:1.34.4';

let dockerd: Dockerd;
let registry: Registry;
let baseId = '';
const ids: Record<string, string> = {};
const roots: string[] = [];

const docker = (args: string[]) => exec('docker', args, { env: { ...dockerd.env, DOCKER_BUILDKIT: '0' } });
const fail = (what: string, r: { stdout: string; stderr: string }) => `${what}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** A stand-in image holding /version = `text`, pushed under the upstream repository path on the stand-in registry
 * and removed locally so sovereign has to pull it. Resolves its image id. */
async function pushStandIn(upstream: string, text: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'sov-standin-version-'));
  try {
    writeFileSync(join(dir, 'version'), `${text}\n`);
    return await pushStandInImage({ dockerEnv: dockerd.env, registry, path: mirrorPath(upstream), base: baseId, files: { '/version': join(dir, 'version') } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Source = { mirror: string } | { file: string } | Record<string, never>;
const spec = (image: string, s: Source) => JSON.stringify({ image, ...s });

/** A checkout with forge and vault whose Dockerfiles copy /version out of their upstream image. */
function project(forge: Source, vault: Source, vaultImage = VAULT): string {
  const root = checkout('sovereign-upstream-', config(forge, vault, vaultImage));
  roots.push(root);
  for (const name of ['forge', 'vault']) {
    rmSync(join(root, 'vm', name), { recursive: true, force: true });
    mkdirSync(join(root, 'vm', name), { recursive: true });
    writeFileSync(join(root, 'vm', name, 'Dockerfile'), 'ARG APP_IMAGE\nFROM ${APP_IMAGE} AS app\nFROM scratch\nCOPY --from=app /version /version\n');
    writeFileSync(join(root, 'vm', name, 'init.sh'), '#!/bin/sh\n');
  }
  writeFileSync(join(root, 'kernel'), 'not a kernel: these tests only build images');
  return root;
}

function config(forge: Source, vault: Source, vaultImage: string): string {
  const svc = (name: string, ip: string, image: string, s: Source) =>
    `${name}: { displayName: '${name}', guestIp: '${ip}', ports: [443], readyMarker: 'up', kernel: { path: 'kernel' }, upstream: { APP_IMAGE: ${spec(image, s)} } },`;
  return `import { defineConfig } from 'sovereign';\nexport default defineConfig({ services: {\n  ${svc('forge', '192.168.100.3', FORGEJO, forge)}\n  ${svc('vault', '192.168.100.4', vaultImage, vault)}\n} });\n`;
}

const run = (root: string, args: string[]) => sovereign([...args, '--json'], { cwd: root, env: { DOCKER_HOST: dockerd.host } });
const ran = (stdout: string) => (JSON.parse(stdout) as { tasks: { task: string; outcome: string }[] }).tasks.filter((t) => t.outcome === 'ran').map((t) => t.task).sort();
const lock = (root: string) => JSON.parse(readFileSync(join(root, 'sovereign.lock.json'), 'utf8')) as { upstream: Record<string, { image: string; ids: Record<string, string> }> };
const builtVersion = async (root: string, service: string) => {
  const img = (JSON.parse(readFileSync(join(root, '.sovereign/runs/last.json'), 'utf8')) as { tasks: { task: string; key?: string }[] }).tasks.find((t) => t.task === `${service}:image`);
  assert.ok(img?.key, `${service}:image has a key in last.json`);
  const name = `sov-upstream-check-${process.pid}`;
  // The image this key built, by its tag: never "the newest sovereign-<service>" — images are reproducible, so two
  // builds share one Created time and `docker images` may list either first.
  await docker(['create', '--name', name, `sovereign-${service}:${img.key.slice(0, 12)}`, '/version']);
  try {
    const out = mkdtempSync(join(tmpdir(), 'sov-cp-'));
    await docker(['cp', `${name}:/version`, out]);
    const text = readFileSync(join(out, 'version'), 'utf8').trim();
    rmSync(out, { recursive: true, force: true });
    return text;
  } finally {
    await docker(['rm', '-f', name]);
  }
};

test.before(async () => {
  // The private daemon's only way out is a proxy that refuses: like this machine, it cannot reach any real registry
  // (loopback, where the stand-in registry listens, is never proxied).
  dockerd = await startDockerd({ env: { HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: '' } });
  registry = await startRegistry();
  baseId = await busyboxImage(dockerd.env, 'sov-standin-busybox:1');
  ids.forge = await pushStandIn(FORGEJO, 'forgejo stand-in 11.0.15');
  ids.vault = await pushStandIn(VAULT, 'vaultwarden stand-in 1.34.3');
  ids.vaultNext = await pushStandIn(VAULT_NEXT, 'vaultwarden stand-in 1.34.4');
});
test.after(async () => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
  await registry?.stop();
  await dockerd?.stop();
});

let first = '';
test('first fetch from a mirror records each image id in sovereign.lock.json and builds on it', async () => {
  first = project({ mirror: registry.host }, { mirror: registry.host });
  const r = await run(first, ['run', 'forge:image', 'vault:image']);
  assert.is(r.code, 0, fail('first fetch', r));
  assert.equal(ran(r.stdout), ['forge:image', 'forge:upstream', 'vault:image', 'vault:upstream']);
  assert.equal(lock(first).upstream, {
    'forge.APP_IMAGE': { image: FORGEJO, ids: { 'linux/amd64': ids.forge } },
    'vault.APP_IMAGE': { image: VAULT, ids: { 'linux/amd64': ids.vault } },
  });
  assert.is(await builtVersion(first, 'forge'), 'forgejo stand-in 11.0.15');
  const again = await run(first, ['run', 'forge:image', 'vault:image']);
  assert.is(again.code, 0, fail('second run', again));
  assert.equal(ran(again.stdout), [], 'nothing runs again');
});

test('a new pin re-fetches and rebuilds only that service, and replaces its lock entry', async () => {
  writeFileSync(join(first, 'sovereign.config.ts'), config({ mirror: registry.host }, { mirror: registry.host }, VAULT_NEXT));
  const r = await run(first, ['run', 'forge:image', 'vault:image']);
  assert.is(r.code, 0, fail('new pin', r));
  assert.equal(ran(r.stdout), ['vault:image', 'vault:upstream']);
  assert.equal(lock(first).upstream['vault.APP_IMAGE'], { image: VAULT_NEXT, ids: { 'linux/amd64': ids.vaultNext } });
  assert.equal(lock(first).upstream['forge.APP_IMAGE'], { image: FORGEJO, ids: { 'linux/amd64': ids.forge } });
  assert.is(await builtVersion(first, 'vault'), 'vaultwarden stand-in 1.34.4');
});

test('a clone with the lock file rejects a tampered image (expected/got) and accepts the genuine one from a local file', async () => {
  const clone = project({ mirror: registry.host }, { mirror: registry.host });
  copyFileSync(join(first, 'sovereign.lock.json'), join(clone, 'sovereign.lock.json'));
  // The genuine image as a `docker save` file, then gone from the daemon: the clone is on another machine.
  await docker(['save', '-o', join(clone, 'forgejo.tar'), ids.forge]);
  await docker(['rmi', '-f', ids.forge]);
  const evil = await pushStandIn(FORGEJO, 'tampered');
  const r = await run(clone, ['run', 'forge:image']);
  assert.is(r.code, 1, fail('tampered pull must fail', r));
  assert.match(r.stdout + r.stderr, `expected ${ids.forge}, got ${evil}`);
  assert.match(r.stdout + r.stderr, 'sovereign.lock.json');
  const left = await exec('docker', ['image', 'inspect', evil], { env: dockerd.env, nothrow: true });
  assert.is.not(left.code, 0, 'the rejected image does not stay in the daemon');
  assert.equal(lock(clone).upstream['forge.APP_IMAGE'].ids['linux/amd64'], ids.forge, 'the lock is unchanged');

  writeFileSync(join(clone, 'sovereign.config.ts'), config({ file: 'forgejo.tar' }, { mirror: registry.host }, VAULT_NEXT));
  const ok = await run(clone, ['run', 'forge:image']);
  assert.is(ok.code, 0, fail('genuine file', ok));
  assert.is(await builtVersion(clone, 'forge'), 'forgejo stand-in 11.0.15');
});

test('offline (no mirror, upstream unreachable): one clear error naming the override, exit 4, no build log', async () => {
  const offline = project({}, {});
  const r = await sovereign(['run', 'forge:image'], { cwd: offline, env: { DOCKER_HOST: dockerd.host } });
  assert.is(r.code, 4, fail('offline', r));
  const out = r.stdout + r.stderr;
  assert.match(out, `cannot fetch ${FORGEJO} for forge`);
  assert.match(out, 'services.forge.upstream.APP_IMAGE');
  assert.match(out, 'mirror');
  assert.not.match(out, /Step \d+\/\d+/, 'no docker build ran');
});

test('an unpinned upstream image is a config error naming the field', async () => {
  const root = project({}, {});
  writeFileSync(join(root, 'sovereign.config.ts'), config({}, {}, 'vaultwarden/server:latest'));
  const r = await sovereign(['run', 'vault:image'], { cwd: root, env: { DOCKER_HOST: dockerd.host } });
  assert.is(r.code, 3, fail('unpinned', r));
  assert.match(r.stdout + r.stderr, 'services.vault.upstream.APP_IMAGE.image: must pin an exact version');
});

test.run();
