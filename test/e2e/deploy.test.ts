// End to end through the real CLI: build and deploy two tiny busybox services to the local device, then check
// what re-runs after a change, that keys are isolated per service, that data disks survive, and what --dry-run touches.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, openSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync, closeSync, appendFileSync, lstatSync } from 'node:fs';
import { join, relative } from 'node:path';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { identityOf, KERNEL_BYTES, mode, outcomes, ran, sha256, tinyProject, type RunSummary, type TinyProject } from '../support/tiny-project.ts';
import { createHash } from 'node:crypto';

let dockerd: Dockerd;
/** One project the lifecycle tests walk through in order (deploy, re-run, edit, …). */
let p: TinyProject;
const extra: TinyProject[] = [];

const FORGE_FILES = ['rootfs.img', 'kernel', 'start.sh', 'data.img', 'secrets.env', 'manifest.json'];
const must = (r: { code: number; stdout?: string; stderr: string }, what: string) => assert.is(r.code, 0, `${what} failed:\n${r.stdout ?? ''}\n${r.stderr}`);
const show = (s: RunSummary) => s.tasks.map((t) => `${t.task}=${t.outcome}${t.reason ? ` (${t.reason})` : ''}`).join('\n');
const ino = (path: string) => statSync(path).ino;
const timed = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
  const t = Date.now();
  try { return await fn(); } finally { console.log(`  ${label}: ${((Date.now() - t) / 1000).toFixed(1)}s`); }
};

test.before(async () => {
  dockerd = await startDockerd();
  p = tinyProject('deploy', dockerd.host);
});
test.after(async () => {
  p?.cleanup();
  for (const x of extra) x.cleanup();
  await dockerd?.stop();
});

test('1. forge:deploy on the local device runs each step once and lands every file with its mode and manifest', async () => {
  const { code, summary, stderr } = await timed('first forge:deploy', () => p.runJson(['run', 'forge:deploy']));
  assert.is(code, 0, stderr);
  const ids = summary.tasks.map((t) => t.task);
  assert.equal(ids.length, new Set(ids).size, `a task reported twice:\n${show(summary)}`);
  // sql contributes its kernel and nothing else.
  assert.equal(ids.filter((t) => t.startsWith('sql:')), ['sql:kernel'], show(summary));
  const expected = ['forge:image', 'forge:rootfs', 'forge:data-disk', 'forge:start-script', 'sql:kernel',
    'forge:push-rootfs', 'forge:push-kernel', 'forge:push-start-script', 'forge:push-data-disk', 'forge:push-secrets'];
  assert.equal(ran(summary), expected.sort(), show(summary));
  // The push keeps start.sh's 0755, so chmod finds nothing to do; it must still be checked, once.
  assert.ok(['ran', 'skipped'].includes(outcomes(summary)['forge:chmod']), show(summary));
  assert.is(outcomes(summary)['forge:kernel'], 'fresh', 'forge:kernel is sql:kernel under a second name');
  assert.is(p.dockerBuilds().length, 1, p.dockerCalls().join('\n'));

  const dev = p.localDeviceDir('forge');
  for (const f of FORGE_FILES) assert.ok(existsSync(join(dev, f)), `${relative(p.root, join(dev, f))} on the local device`);
  assert.is(mode(join(dev, 'start.sh')), 0o755);
  assert.is(mode(join(dev, 'secrets.env')), 0o600);
  const secrets = readFileSync(join(dev, 'secrets.env'), 'utf8');
  assert.match(secrets, 'FORGE_TOKEN=forge-secret-value');
  assert.not.match(secrets, 'SQL_PASSWORD', 'forge receives only the keys it declares');

  const out = join(p.root, '.sovereign', 'out');
  const manifest = JSON.parse(readFileSync(join(dev, 'manifest.json'), 'utf8')) as { files: Record<string, { sha256: string; size: number }> };
  const local: Record<string, string> = {
    'rootfs.img': join(out, 'forge', 'rootfs.img'),
    kernel: join(out, 'sql', 'kernel'),
    'start.sh': join(out, 'forge', 'start.sh'),
    'data.img': join(p.root, '.sovereign', 'data', 'forge', 'data.img'),
  };
  for (const [name, path] of Object.entries(local)) {
    const want = sha256(path);
    assert.is(sha256(join(dev, name)), want, `${name} on the device equals the local one`);
    assert.equal(manifest.files[name], await identityOf(name, path), `manifest entry of ${name}`);
  }
  assert.is(sha256(join(dev, 'kernel')), createHash('sha256').update(KERNEL_BYTES).digest('hex'));
});

test('2. a second forge:deploy does nothing and moves no bytes', async () => {
  const { code, summary, stderr } = await timed('no-op forge:deploy', () => p.runJson(['run', 'forge:deploy']));
  assert.is(code, 0, stderr);
  assert.equal(ran(summary), [], show(summary));
  assert.is(summary.bytes, 0);
  assert.is(p.dockerBuilds().length, 1, 'no second docker build');
  const last = JSON.parse(readFileSync(join(p.root, '.sovereign', 'runs', 'last.json'), 'utf8')) as RunSummary;
  assert.equal(last.tasks.map((t) => t.outcome), summary.tasks.map((t) => t.outcome), 'last.json holds the same summary');
});

test('3. a one-line init.sh change rebuilds only forge:rootfs and pushes only rootfs.img', async () => {
  appendFileSync(join(p.root, 'vm', 'forge', 'init.sh'), '# one more line\n');
  const why = await p.run(['why', 'forge:rootfs']);
  must(why, 'why');
  assert.match(why.stdout, 'file:vm/forge/init.sh', why.stdout);
  const builds = p.dockerBuilds().length;
  const before = sha256(join(p.root, '.sovereign', 'out', 'forge', 'rootfs.img'));

  const { code, summary, stderr } = await timed('forge:deploy after init.sh edit', () => p.runJson(['run', 'forge:deploy']));
  assert.is(code, 0, stderr);
  assert.equal(ran(summary), ['forge:push-rootfs', 'forge:rootfs'], show(summary));
  assert.is.not(outcomes(summary)['forge:image'], 'ran');
  assert.is(p.dockerBuilds().length, builds, 'the image was not rebuilt');
  const img = join(p.root, '.sovereign', 'out', 'forge', 'rootfs.img');
  assert.is.not(sha256(img), before, 'rootfs.img changed');
  assert.is(sha256(join(p.localDeviceDir('forge'), 'rootfs.img')), sha256(img));
  const pushedBytes = summary.tasks.find((t) => t.task === 'forge:push-rootfs')?.bytes;
  assert.ok(pushedBytes && pushedBytes > 0 && summary.bytes === pushedBytes, `only rootfs.img moved: ${summary.bytes} bytes`);
});

/** sql:* task -> key, from a dry run of sql:build. */
async function sqlKeys(): Promise<Record<string, string | undefined>> {
  const { code, summary, stderr } = await p.runJson(['run', 'sql:build', '--dry-run']);
  assert.is(code, 0, stderr);
  return Object.fromEntries(summary.tasks.filter((t) => t.task.startsWith('sql:')).map((t) => [t.task, t.key]));
}

test('3b. why names the dependency that will run when an upstream input changed', async () => {
  const dockerfile = join(p.root, 'vm', 'forge', 'Dockerfile');
  const original = readFileSync(dockerfile, 'utf8');
  appendFileSync(dockerfile, '# a comment changes the build context\n');
  const why = await p.run(['why', 'forge:rootfs']);
  must(why, 'why');
  assert.match(why.stdout, 'forge:rootfs will run because its dependency forge:image will run first', why.stdout);
  const whyImage = await p.run(['why', 'forge:image']);
  assert.match(whyImage.stdout, 'dir:vm/forge', whyImage.stdout);
  writeFileSync(dockerfile, original);
  const back = await p.run(['why', 'forge:rootfs']);
  assert.match(back.stdout, 'is up to date', back.stdout);
});

test('4. editing a comment and a field of forge changes no key of sql', async () => {
  must(await timed('sql:build', () => p.run(['run', 'sql:build'])), 'sql:build'); // every sql task gets a key of its own
  const before = await sqlKeys();
  for (const [t, k] of Object.entries(before)) if (t !== 'sql:build') assert.ok(k, `${t} has a key in the dry run`);
  const forgeBefore = (await p.runJson(['run', 'forge:start-script', '--dry-run'])).summary.tasks.find((t) => t.task === 'forge:start-script')?.key;

  const cfg = join(p.root, 'sovereign.config.ts');
  const text = readFileSync(cfg, 'utf8');
  const edited = text.replace('// forge: a tiny stand-in for Forgejo', '// forge: the Forgejo stand-in (comment edited)').replace('memory: 256,', 'memory: 384,');
  assert.is.not(edited, text);
  writeFileSync(cfg, edited);

  assert.equal(await sqlKeys(), before);
  const forgeAfter = (await p.runJson(['run', 'forge:start-script', '--dry-run'])).summary.tasks.find((t) => t.task === 'forge:start-script')?.key;
  assert.ok(forgeBefore && forgeAfter && forgeAfter !== forgeBefore, 'the edit is seen: forge:start-script (reads memory) has a new key');
  must(await p.run(['run', 'forge:deploy']), 'forge:deploy after the config edit');
});

test('5. the data disk is user data: --force keeps it, --fresh-data refuses without --yes, --yes replaces it', async () => {
  const local = join(p.root, '.sovereign', 'data', 'forge', 'data.img');
  const dev = join(p.localDeviceDir('forge'), 'data.img');
  // Stand-ins for what the VM wrote: a marker in each copy.
  for (const f of [local, dev]) scribble(f, `user data of ${f}`);
  const snap = () => ({ local: [ino(local), sha256(local)], dev: [ino(dev), sha256(dev)] });
  const start = snap();

  const forced = await timed('forge:deploy --force', () => p.runJson(['run', 'forge:deploy', '--force']));
  assert.is(forced.code, 0, forced.stderr);
  assert.ok(ran(forced.summary).includes('forge:rootfs'), `--force re-ran the build:\n${show(forced.summary)}`);
  assert.equal(snap(), start, 'both data.img copies untouched by --force');

  const refused = await p.run(['run', 'forge:deploy', '--fresh-data']);
  const said = refused.stdout + refused.stderr;
  // Exit 2: the command line lacks --yes (the first failure's kind decides the exit code).
  assert.is(refused.code, 2, `a non-interactive --fresh-data without --yes fails:\n${said}`);
  assert.match(said, /refusing without confirmation in a non-interactive run/, said);
  assert.match(said, /--yes/, 'the hint names --yes');
  assert.equal(snap(), start, 'nothing replaced without confirmation');

  const yes = await timed('forge:deploy --fresh-data --yes', () => p.runJson(['run', 'forge:deploy', '--fresh-data', '--yes']));
  assert.is(yes.code, 0, yes.stderr);
  assert.is(outcomes(yes.summary)['forge:push-data-disk'], 'ran', show(yes.summary));
  assert.is.not(ino(dev), start.dev[0], 'the device copy was replaced');
  assert.not.ok(readFileSync(dev).includes('user data of'), 'the device copy no longer holds the old data');
  assert.is(sha256(dev), sha256(local), 'the device holds the fresh local data.img');
});

test('cache: a deleted rootfs.img makes deploy do nothing, and build restores it from the cache', async () => {
  must(await p.run(['run', 'forge:deploy']), 'forge:deploy');
  const img = join(p.root, '.sovereign', 'out', 'forge', 'rootfs.img');
  const want = sha256(img);
  unlinkSync(img);
  const builds = p.dockerBuilds().length;

  const deploy = await timed('forge:deploy without rootfs.img', () => p.runJson(['run', 'forge:deploy']));
  assert.is(deploy.code, 0, deploy.stderr);
  assert.equal(ran(deploy.summary), [], show(deploy.summary));
  assert.is(deploy.summary.bytes, 0);
  assert.is(outcomes(deploy.summary)['forge:push-rootfs'], 'skipped', 'the device already has it');
  assert.not.ok(existsSync(img), 'deploy did not need rootfs.img on disk');

  const build = await timed('forge:build restoring rootfs.img', () => p.runJson(['run', 'forge:build']));
  assert.is(build.code, 0, build.stderr);
  assert.is(outcomes(build.summary)['forge:rootfs'], 'restored', show(build.summary));
  assert.equal(ran(build.summary), [], show(build.summary));
  assert.is(p.dockerBuilds().length, builds, 'no docker build');
  assert.is(sha256(img), want);
});

test('9. --dry-run in a fresh checkout lists sql:kernel only of sql and writes nothing but the config cache', async () => {
  const q = tinyProject('dry', dockerd.host);
  extra.push(q);
  rmSync(join(q.root, '.env')); // a real run would generate missing secrets into it
  const before = snapshot(q.root);
  const { code, summary, stderr } = await timed('forge:deploy --dry-run', () => q.runJson(['run', 'forge:deploy', '--dry-run']));
  assert.is(code, 0, stderr);
  assert.equal(summary.tasks.filter((t) => t.task.startsWith('sql:')).map((t) => t.task), ['sql:kernel'], show(summary));
  assert.ok(summary.tasks.length >= 12, show(summary));
  for (const t of summary.tasks) assert.is(t.outcome, 'would-run', `${t.task}: ${t.outcome}`);
  assert.equal(snapshot(q.root), before, 'nothing outside .sovereign/ changed');
  // Only the config cache: a dry run never writes a run summary, so the last real run's last.json survives it.
  assert.equal(readdirSync(join(q.root, '.sovereign')).sort(), ['config'], 'only the config cache under .sovereign/');
  assert.equal(q.dockerCalls(), [], 'a dry run runs no docker');
});

/** Writes `text` into the middle of a disk image, in place (same inode), as a VM would. */
function scribble(file: string, text: string): void {
  const fd = openSync(file, 'r+');
  try { writeSync(fd, text, Math.floor(statSync(file).size / 2)); } finally { closeSync(fd); }
}

/** Every path under `root` except .sovereign/, with size, mode and mtime. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const rel = relative(root, path);
      if (rel === '.sovereign') continue;
      const st = lstatSync(path);
      out[rel] = `${st.size} ${st.mode.toString(8)} ${st.mtimeMs}`;
      if (st.isDirectory()) walk(path);
    }
  };
  walk(root);
  return out;
}

test.run();
