// The real PostgreSQL VM end to end through the real CLI on the `local` device: debootstrap base, image, rootfs,
// kernel with its NIC modules, data disk; boot under qemu; a real login and query; a warm no-op; data kept across restarts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../lib/exec.ts';
import { checkout, sovereign, type CliResult } from '../support/cli.ts';
import { secretForms, watchCmdlines, type CmdlineWatch } from '../support/cmdline-watch.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { freePort } from '../support/tiny-vm.ts';

interface TaskSummary { task: string; outcome: string; durationMs?: number; bytes?: number; error?: string }
interface RunSummary { ok: boolean; durationMs: number; bytes: number; tasks: TaskSummary[] }
interface Run extends CliResult { secs: number; summary: RunSummary }

const MIN = 60_000;
let dockerd: Dockerd | undefined;
let root = '';
let vmDir = '';
let port = 0;
let env: Record<string, string> = {};
let watch: CmdlineWatch | undefined;
const password = `sov-${randomBytes(12).toString('hex')}`;
const times: Record<string, number> = {};

const tail = (text: string, n: number) => text.trim().split('\n').slice(-n).join('\n');
const consoleTail = (n = 30) => { try { return tail(readFileSync(join(vmDir, 'console.log'), 'utf8'), n); } catch { return '(no console.log)'; } };

/** `sovereign run ARGS` in the checkout; a failure names the run's last lines, the failed tasks and the VM's last console lines. */
async function run(args: string[], timeoutMs: number, extra: string[] = []): Promise<Run> {
  const t = Date.now();
  const r = await sovereign(['run', ...args, ...extra], { cwd: root, env, signal: AbortSignal.timeout(timeoutMs) });
  const secs = (Date.now() - t) / 1000;
  const summary = JSON.parse(await fs.readFile(join(root, '.sovereign/runs/last.json'), 'utf8').catch(() => '{"tasks":[]}')) as RunSummary;
  if (r.code !== 0) {
    const failed = summary.tasks.filter((x) => x.outcome === 'failed').map((x) => `${x.task}: ${x.error}`).join('\n');
    assert.unreachable(`sovereign run ${args.join(' ')} exited ${r.code} after ${secs.toFixed(0)}s\n--- output\n${tail(r.stdout + r.stderr, 40)}\n--- failed tasks\n${failed}\n--- VM console (last lines)\n${consoleTail()}`);
  }
  return { ...r, secs, summary };
}

/** psql on this machine against the VM's forwarded port; the password rides the environment, never argv. */
async function psql(sql: string): Promise<string> {
  const r = await exec('psql', ['-X', '-w', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql], {
    env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' }, nothrow: true, timeoutMs: 30_000,
  });
  assert.is(r.code, 0, `psql -c ${JSON.stringify(sql)} failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

const vmPid = () => { try { return Number(readFileSync(join(vmDir, 'vm.pid'), 'utf8').trim()) || undefined; } catch { return undefined; } };
const alive = (pid: number) => { try { return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0] !== 'Z'; } catch { return false; } };
const task = (s: RunSummary, id: string) => s.tasks.find((x) => x.task === id);

test.before(async () => {
  if (process.getuid?.() !== 0) throw new Error('this test builds the debootstrap base and needs root (CI runs as root)');
  for (const tool of ['qemu-system-x86_64', 'debootstrap', 'dockerd', 'psql']) {
    if ((await exec('sh', ['-c', `command -v ${tool}`], { nothrow: true })).code !== 0) throw new Error(`${tool} is not installed: run scripts/setup-host.sh`);
  }
  dockerd = await startDockerd();
  root = checkout(`sovereign-sql-${process.pid}-`);
  vmDir = join(root, '.sovereign/devices/local/vm/sql');
  port = await freePort();
  // The sql VM's declared secrets, so the test knows the postgres password (the CLI would otherwise generate them).
  const secrets = ['POSTGRES_PASSWORD', 'POSTGRES_FORGEJO_PASSWORD', 'POSTGRES_VAULTWARDEN_PASSWORD'];
  await fs.writeFile(join(root, '.env'), secrets.map((k, i) => `${k}=${i ? randomBytes(12).toString('hex') : password}\n`).join(''), { mode: 0o600 });
  env = { DOCKER_HOST: dockerd.host, SOVEREIGN_PORT_SQL_5432: String(port) };
  // Every process's argv, all test long (every 20 ms: psql runs live far longer): the password, or its base64, must never appear in one.
  watch = watchCmdlines(secretForms(password), 20);
});

test.after(async () => {
  const hits = watch?.stop() ?? [];
  const pid = vmPid();
  if (pid && alive(pid)) {
    await sovereign(['run', 'sql:stop'], { cwd: root, env, signal: AbortSignal.timeout(MIN) }).catch(() => undefined);
    if (alive(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  }
  await dockerd?.stop();
  if (root) await fs.rm(root, { recursive: true, force: true });
  const summary = Object.entries(times).map(([k, v]) => `${k} ${v.toFixed(1)}s`).join(', ');
  if (summary) console.log(`  sql VM times: ${summary}`);
  if (hits.length) throw new Error(`the postgres password appeared in a command line:\n${hits.join('\n')}`);
});

test('cold `sql:start`: builds everything, pushes, boots under qemu, waits for the ready marker', async () => {
  const r = await run(['sql:start'], 20 * MIN);
  times.cold = r.secs;
  times.boot = (task(r.summary, 'sql:start')?.durationMs ?? NaN) / 1000;
  const slow = r.summary.tasks.filter((x) => (x.durationMs ?? 0) >= 1000).map((x) => `${x.task} ${((x.durationMs ?? 0) / 1000).toFixed(1)}s`);
  console.log(`  cold sql:start ${r.secs.toFixed(1)}s (boot ${times.boot.toFixed(1)}s): ${slow.join(', ')}`);
  for (const id of ['sql:base', 'sql:image', 'sql:rootfs', 'sql:kernel', 'sql:push-rootfs', 'sql:start']) assert.is(task(r.summary, id)?.outcome, 'ran', id);
  assert.ok(r.summary.bytes > 0);
  const log = readFileSync(join(vmDir, 'console.log'), 'utf8');
  assert.match(log, /\[init\] modules: virtio_ring .*virtio_net/, 'init loaded the NIC modules shipped by the kernel step');
  assert.match(log, /\[init\] network: \S+ 192\.168\.100\.2\/24/, 'the guest has a network interface');
  assert.match(log, 'PostgreSQL started');
  assert.ok(vmPid() && alive(vmPid()!), 'the VM runs');
});

test('`sql:test` logs in as postgres and runs SELECT 1', async () => {
  const r = await run(['sql:test'], 3 * MIN);
  assert.match(r.stdout, /login as postgres runs SELECT 1: ✓ PASS/, tail(r.stdout, 20));
  assert.match(r.stdout, 'ALL TESTS PASSED');
  assert.not.match(r.stdout + r.stderr, password);
});

test('`sql:test` fails when the login fails (a wrong password in .env)', async () => {
  const envFile = join(root, '.env');
  const good = await fs.readFile(envFile, 'utf8');
  await fs.writeFile(envFile, good.replace(password, 'not-the-password'), { mode: 0o600 });
  try {
    const r = await sovereign(['run', 'sql:test'], { cwd: root, env, signal: AbortSignal.timeout(3 * MIN) });
    assert.is(r.code, 1, tail(r.stdout + r.stderr, 20));
    assert.match(r.stdout + r.stderr, /login as postgres runs SELECT 1: ✗ FAIL \(.*password authentication failed/);
  } finally {
    await fs.writeFile(envFile, good, { mode: 0o600 });
  }
});

test('`forge:test` checks forge\'s own database login against the real sql VM (forge itself is not running here)', async () => {
  const r = await sovereign(['run', 'forge:test'], { cwd: root, env, signal: AbortSignal.timeout(3 * MIN) });
  assert.match(r.stdout + r.stderr, /database login as forgejo to sql\/forgejo runs SELECT 1: ✓ PASS/, tail(r.stdout + r.stderr, 20));
  const envFile = join(root, '.env');
  const good = await fs.readFile(envFile, 'utf8');
  await fs.writeFile(envFile, good.replace(/^POSTGRES_FORGEJO_PASSWORD=.*$/m, 'POSTGRES_FORGEJO_PASSWORD=not-the-password'), { mode: 0o600 });
  try {
    const bad = await sovereign(['run', 'forge:test'], { cwd: root, env, signal: AbortSignal.timeout(3 * MIN) });
    assert.match(bad.stdout + bad.stderr, /database login as forgejo to sql\/forgejo runs SELECT 1: ✗ FAIL \(.*password authentication failed/, tail(bad.stdout + bad.stderr, 20));
  } finally {
    await fs.writeFile(envFile, good, { mode: 0o600 });
  }
});

test('warm `sql:start`: nothing runs, 0 bytes pushed', async () => {
  const pid = vmPid();
  const r = await run(['sql:start'], 3 * MIN, ['--json']);
  times.warm = r.secs;
  console.log(`  warm sql:start ${r.secs.toFixed(1)}s`);
  const summary = JSON.parse(r.stdout) as RunSummary;
  const ran = summary.tasks.filter((x) => x.outcome === 'ran').map((x) => x.task);
  assert.equal(ran, [], `tasks ran on a warm run: ${ran.join(', ')}`);
  assert.is(summary.bytes, 0);
  assert.is(vmPid(), pid, 'the same VM keeps running');
});

test('data survives stop and start: a table created before is there after', async () => {
  await psql('CREATE TABLE sovereign_probe (v text); INSERT INTO sovereign_probe VALUES (\'kept\')');
  const pid = vmPid()!;
  await run(['sql:stop'], 2 * MIN);
  assert.not.ok(alive(pid), 'the VM process is gone after stop');
  const r = await run(['sql:start'], 5 * MIN);
  assert.is(task(r.summary, 'sql:start')?.outcome, 'ran');
  assert.is(r.summary.tasks.filter((x) => x.outcome === 'ran').length, 1, 'only start ran');
  times.restart = (task(r.summary, 'sql:start')?.durationMs ?? NaN) / 1000;
  assert.is(await psql('SELECT v FROM sovereign_probe'), 'kept');
  const stop = await run(['sql:stop'], 2 * MIN);
  assert.is(stop.summary.ok, true);
  assert.is(vmPid(), undefined, 'no pid file after stop');
});

test.run();
