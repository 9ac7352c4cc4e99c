// Crash consistency through the real CLI: `sovereign run forge:deploy` is SIGKILLed at random moments while it builds,
// restores from the store and pushes to the local device, with a changed input each round. After every kill the store's
// records must all verify against their blobs and the device manifest must vouch only for what the files hold; the next
// run must finish and leave the device on the current input, and a run after it must do nothing.
// Randomness is seeded: CRASH_SEED=<n> replays a failing sequence (the seed is printed and named in every failure).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin } from '../support/cli.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { identityOf, KERNEL_BYTES, ran, sha256, tinyProject, type RunSummary, type TinyProject } from '../support/tiny-project.ts';

const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 10);
const SEED = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));

let dockerd: Dockerd;
let p: TinyProject;

test.before(async () => {
  dockerd = await startDockerd();
  p = tinyProject('crash', dockerd.host);
});
test.after(async () => {
  p?.cleanup();
  await dockerd?.stop();
});

/** mulberry32: small, seedable, good enough to pick kill times. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Variant `v` of the inputs: sql's kernel (pushed by delta) and forge's Dockerfile (image, rootfs, rootfs push). */
function setVariant(v: number): Buffer {
  const kernel = Buffer.concat([KERNEL_BYTES, Buffer.from(`variant ${v}\n`)]);
  writeFileSync(join(p.root, 'kernel.bin'), kernel);
  writeFileSync(join(p.root, 'vm', 'forge', 'Dockerfile'), `FROM scratch\nCOPY busybox /bin/busybox\nLABEL variant=${v}\n`);
  return kernel;
}

/** Starts `run forge:deploy`, SIGKILLs it after `ms` (if still running); resolves with how it ended. */
function killedRun(ms: number): Promise<string> {
  const child = spawn(process.execPath, [bin, 'run', 'forge:deploy'], { cwd: p.root, env: { ...process.env, NO_COLOR: '1', ...p.env }, stdio: 'ignore' });
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  return new Promise((resolve) => child.on('close', (code, sig) => { clearTimeout(timer); resolve(sig ? `killed after ${ms} ms` : `finished (exit ${code}) before ${ms} ms`); }));
}

/** Every record in the local store names blobs that exist and hash to what it says (a torn record does not parse). */
function storeProblems(): string[] {
  const store = join(p.root, '.sovereign', 'cache');
  const records = join(store, 'records');
  const bad: string[] = [];
  for (const name of existsSync(records) ? readdirSync(records) : []) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    let rec: { files: { name: string; sha256: string; size: number }[] };
    try { rec = JSON.parse(readFileSync(join(records, name), 'utf8')); } catch (e) { bad.push(`record ${name} does not parse: ${(e as Error).message}`); continue; }
    for (const f of rec.files) {
      const blob = join(store, 'blobs', f.sha256.slice(0, 2), f.sha256);
      if (!existsSync(blob)) bad.push(`record ${name}: blob of ${f.name} missing`);
      else if (statSync(blob).size !== f.size || sha256(blob) !== f.sha256) bad.push(`record ${name}: blob of ${f.name} does not hash to ${f.sha256.slice(0, 12)}`);
    }
  }
  return bad;
}

/** Every manifest entry on the local device matches its file (a manifest that vouches for other bytes makes a later check lie). */
async function deviceProblems(): Promise<string[]> {
  const dir = p.localDeviceDir('forge');
  const file = join(dir, 'manifest.json');
  if (!existsSync(file)) return [];
  let m: { files: Record<string, { sha256: string; size: number; identity?: string; replacing?: true }> };
  try { m = JSON.parse(readFileSync(file, 'utf8')); } catch (e) { return [`manifest.json does not parse: ${(e as Error).message}`]; }
  const bad: string[] = [];
  // An entry marked `replacing` vouches for nothing (a push was under way): the next check pushes again.
  for (const [name, want] of Object.entries(m.files).filter(([, e]) => !e.replacing)) {
    const path = join(dir, name);
    if (!existsSync(path)) bad.push(`${name} is in the manifest but not on the device`);
    else if (!same(await identityOf(name, path), want)) bad.push(`${name} on the device is not the ${want.sha256.slice(0, 12)} its manifest records`);
  }
  return bad;
}

const same = (a: { sha256: string; size: number; identity?: string }, b: typeof a) => a.sha256 === b.sha256 && a.size === b.size && a.identity === b.identity;

async function deploy(): Promise<{ summary: RunSummary; ms: number }> {
  const t = Date.now();
  const r = await p.runJson(['run', 'forge:deploy']);
  assert.is(r.code, 0, r.stderr);
  return { summary: r.summary, ms: Date.now() - t };
}

test(`SIGKILL at random points of build, restore and push leaves the store and device consistent (seed ${SEED})`, async () => {
  console.log(`  CRASH_SEED=${SEED} CRASH_ROUNDS=${ROUNDS}`);
  const rnd = random(SEED);
  setVariant(0);
  await deploy();
  // How long a run takes that builds a new input, and one that restores an input the store holds (the device holding
  // another): kills land anywhere within such a run.
  setVariant(1);
  const span = { build: (await deploy()).ms, restore: 0 };
  setVariant(0);
  span.restore = (await deploy()).ms;
  console.log(`  a building deploy takes ${span.build} ms, a restoring one ${span.restore} ms`);
  const started = Date.now();
  let fresh = 2;
  let v = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    // Half the rounds a new input (real builds), half an earlier one (restores from the store); never the last one.
    const build = rnd() < 0.5;
    const prev = v;
    while (v === prev) v = build ? fresh++ : Math.floor(rnd() * fresh);
    const kernel = setVariant(v);
    const at = Math.floor(rnd() * span[build ? 'build' : 'restore']);
    const how = await killedRun(at);
    const where = `seed ${SEED}, round ${round}, variant ${v}, ${how}`;
    const broken = [...storeProblems(), ...(await deviceProblems())];
    assert.equal(broken, [], `${where}: after the kill\n${broken.join('\n')}`);
    const done = await deploy();
    assert.is(sha256(join(p.localDeviceDir('forge'), 'kernel')), sha256Of(kernel), `${where}: the device runs this round's kernel after a completed run`);
    const again = await deploy();
    assert.equal(ran(again.summary), [], `${where}: a repeat run is a no-op`);
    console.log(`  round ${round}: variant ${v}, ${how}; recovery ran ${ran(done.summary).length} tasks in ${done.ms} ms`);
  }
  console.log(`  ${ROUNDS} rounds in ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

const sha256Of = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test.run();
