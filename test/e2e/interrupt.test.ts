// End to end through the real CLI: Ctrl-C (SIGINT) during forge's docker build exits 130, leaves no build or
// RUN process behind, records nothing as done and leaves no partial rootfs.img.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin } from '../support/cli.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { exec } from '../../lib/exec.ts';
import { outcomes, tinyProject, type TinyProject } from '../support/tiny-project.ts';

let dockerd: Dockerd;
let p: TinyProject;
/** A sleep length no other process on the machine uses, so we can find this test's RUN step by its argv. */
const SLEEP = `9${process.pid}`;

test.before(async () => {
  dockerd = await startDockerd();
  p = tinyProject('sigint', dockerd.host, { forgeDockerfileExtra: `RUN ["/bin/busybox", "sleep", "${SLEEP}"]` });
});
test.after(async () => {
  p?.cleanup();
  await dockerd?.stop();
});

/** Pids whose command line contains every one of `words` (each within some argument). */
function processes(...words: string[]): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let argv: string[];
    try { argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0'); } catch { continue; }
    if (words.every((w) => argv.some((a) => a.includes(w)))) pids.push(Number(name));
  }
  return pids;
}

async function until(what: string, ms: number, ok: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('8. SIGINT during the docker build: exit 130, no process left, nothing recorded, no partial rootfs.img', async () => {
  const child = spawn(process.execPath, [bin, 'run', 'forge:build'], { cwd: p.root, env: { ...process.env, NO_COLOR: '1', ...p.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  const exited = new Promise<number>((resolve) => child.on('close', (code, sig) => resolve(code ?? (sig ? 128 : 1))));
  try {
    // The RUN step's sleep is running inside the build container: the build is mid-step.
    await until('the RUN sleep of the build', 60_000, () => processes('sleep', SLEEP).length > 0 || child.exitCode !== null);
    assert.is(child.exitCode, null, `sovereign ended before the build step ran:\n${out}`);
    const build = processes('build', join(p.root, 'vm', 'forge'));
    assert.ok(build.length > 0, 'a docker build client is running');
    const sent = Date.now();
    child.kill('SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<number>((r) => { timer = setTimeout(() => r(-1), 30_000); })]);
    clearTimeout(timer);
    console.log(`  exit ${code} ${((Date.now() - sent) / 1000).toFixed(1)}s after SIGINT`);
    assert.is(code, 130, out);

    // The daemon stops and removes the RUN container once its client is gone: give it a moment.
    const dockerEnv = { ...process.env, DOCKER_HOST: dockerd.host };
    const containers = async () => (await exec('docker', ['ps', '-aq'], { env: dockerEnv })).stdout.trim();
    const left = () => [...processes('sleep', SLEEP), ...processes('build', join(p.root, 'vm', 'forge'))];
    await until('the build client, the RUN sleep and its container to go', 15_000, async () => left().length === 0 && (await containers()) === '')
      .catch(async (e) => assert.unreachable(`${(e as Error).message}: processes ${left().join(' ')}; containers ${await containers()}`));
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }

  const outDir = join(p.root, '.sovereign', 'out', 'forge');
  assert.not.ok(existsSync(join(outDir, 'rootfs.img')), 'no rootfs.img');
  const tmp = join(p.root, '.sovereign', 'tmp');
  const leftovers = existsSync(tmp) ? readdirSync(tmp, { recursive: true }) : [];
  assert.equal(leftovers, [], 'partial outputs removed from .sovereign/tmp');

  const dry = await p.runJson(['run', 'forge:build', '--dry-run']);
  assert.is(dry.code, 0, dry.stderr);
  assert.is(outcomes(dry.summary)['forge:image'], 'would-run', 'the interrupted image build is not recorded as done');
  assert.is(outcomes(dry.summary)['forge:rootfs'], 'would-run');
});

test.run();
