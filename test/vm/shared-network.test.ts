// One network per device, for real through the CLI: the real sql VM and a dependent VM (`app`, a small Debian VM
// with psql standing in for Forgejo, whose binary cannot be fetched here) on the `local` device and on an ssh box
// (sshd in a network namespace), qemu TCG. `app` logs in to PostgreSQL at 192.168.100.2:5432 over the shared guest
// LAN with its own password; the owner's laptop (this test, outside the box's namespace) reaches an exposed port
// through the box's address and not one that is not exposed. Builds are made once and shared by both devices.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { cpSync, promises as fs, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { exec } from '../../lib/exec.ts';
import { checkout, repo, sovereign } from '../support/cli.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { startSshdDevice, type SshdDevice } from '../support/sshd-netns.ts';
import { freePort } from '../support/tiny-vm.ts';

const MIN = 60_000;
const pw = { POSTGRES_PASSWORD: `pg-${randomBytes(9).toString('hex')}`, POSTGRES_FORGEJO_PASSWORD: `fj-${randomBytes(9).toString('hex')}`, POSTGRES_VAULTWARDEN_PASSWORD: randomBytes(9).toString('hex') };
const EXPOSED = 15432;

let dockerd: Dockerd | undefined;
let box: SshdDevice | undefined;
let root = '';
let env: Record<string, string> = {};
let sqlPort = 0;
const times: string[] = [];

function configText(expose = ''): string {
  const d = box!.device;
  return `import { defineConfig } from 'sovereign';
export default defineConfig({
  services: {
    sql: {
      displayName: 'PostgreSQL', guestIp: '192.168.100.2', ports: [5432], ${expose}
      readyMarker: 'PostgreSQL started', failureMarkers: ['Kernel panic', 'FATAL: data disk'],
      startTimeout: 600, memory: 1024, cpus: 2, dataDiskSize: '1G',
      kernel: { deb: 'linux-image-cloud-amd64' }, base: { debootstrap: { suite: 'bookworm', variant: 'minbase' } },
      secrets: ['POSTGRES_PASSWORD', 'POSTGRES_FORGEJO_PASSWORD', 'POSTGRES_VAULTWARDEN_PASSWORD'],
    },
    app: {
      // a stand-in for Forgejo: logs in to sql over the shared network (test/fixtures/vm/dbclient)
      displayName: 'DB client', dir: 'vm/dbclient', guestIp: '192.168.100.3', ports: [7000],
      readyMarker: 'DBCLIENT READY', failureMarkers: ['Kernel panic', 'FATAL'],
      startTimeout: 600, memory: 512, dataDiskSize: '64M',
      kernel: { from: 'sql' }, base: { from: 'sql' }, dependsOn: ['sql'], secrets: ['POSTGRES_FORGEJO_PASSWORD'],
    },
  },
  devices: {
    box: {
      transport: 'ssh', host: '${d.host}', user: 'root', port: 22, identity: '${d.identity}',
      strictHostKeyChecking: 'yes', knownHosts: '${d.knownHosts}', root: '${d.root}', hypervisor: 'qemu',
    },
  },
});
`;
}

const tail = (text: string, n = 30) => text.trim().split('\n').slice(-n).join('\n');
const consoleOf = (deviceRoot: string, svc: string) => { try { return readFileSync(join(deviceRoot, 'vm', svc, 'console.log'), 'utf8'); } catch { return '(no console.log)'; } };
const localRoot = () => join(root, '.sovereign/devices/local');

/** `sovereign ARGS`; a failure names the output and both VMs' last console lines on that device. */
async function cli(args: string[], timeoutMs: number, deviceRoot = localRoot()): Promise<string> {
  const t = Date.now();
  const r = await sovereign(args, { cwd: root, env, signal: AbortSignal.timeout(timeoutMs) });
  times.push(`${args.join(' ')} ${((Date.now() - t) / 1000).toFixed(0)}s`);
  if (r.code !== 0) {
    assert.unreachable(`sovereign ${args.join(' ')} exited ${r.code}\n--- output\n${tail(r.stdout + r.stderr, 40)}\n--- sql console\n${tail(consoleOf(deviceRoot, 'sql'), 15)}\n--- app console\n${tail(consoleOf(deviceRoot, 'app'), 15)}`);
  }
  return r.stdout + r.stderr;
}

/** psql as postgres (password in the environment, never argv), optionally inside a network namespace. */
async function psql(host: string, port: number, ns?: string): Promise<{ code: number; out: string }> {
  const args = ['-X', '-w', '-A', '-t', '-h', host, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', 'SELECT 41 + 1'];
  const [cmd, argv] = ns ? ['ip', ['netns', 'exec', ns, 'psql', ...args]] : ['psql', args];
  const r = await exec(cmd, argv, { env: { ...process.env, PGPASSWORD: pw.POSTGRES_PASSWORD, PGCONNECT_TIMEOUT: '10' }, nothrow: true, timeoutMs: 30_000 });
  return { code: r.code, out: (r.stdout + r.stderr).trim() };
}

/** Whether a TCP connection to host:port is accepted (refused or timed out: false). */
function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 5000 }, () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
    s.on('timeout', () => { s.destroy(); resolve(false); });
  });
}

/** `status --json` on a device: each VM's facts (running, ready, pid, …) by service. */
async function statusFacts(args: string[]): Promise<Record<string, { running: boolean; ready: boolean; pid?: number }>> {
  const r = await sovereign(['status', '--sql', '--app', ...args, '--json'], { cwd: root, env, signal: AbortSignal.timeout(2 * MIN) });
  assert.is(r.code, 0, r.stdout + r.stderr);
  const tasks = (JSON.parse(r.stdout) as { tasks: { task: string; facts: { running: boolean; ready: boolean; pid?: number } }[] }).tasks;
  return Object.fromEntries(tasks.map((t) => [t.task.replace(/:status$/, ''), t.facts]));
}

const pidOf = (deviceRoot: string, svc: string) => { try { return Number(readFileSync(join(deviceRoot, 'vm', svc, 'vm.pid'), 'utf8').trim()) || undefined; } catch { return undefined; } };
const alive = (pid: number) => { try { return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0] !== 'Z'; } catch { return false; } };
const LOGIN = /\[init\] logged in to PostgreSQL at 192\.168\.100\.2:5432 as forgejo over the shared network/;

test.before(async () => {
  try {
    if (process.getuid?.() !== 0) throw new Error('this test builds the debootstrap base and makes a network namespace: it needs root (CI runs as root)');
    for (const tool of ['qemu-system-x86_64', 'debootstrap', 'dockerd', 'psql', 'sshd']) {
      if ((await exec('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`], { nothrow: true })).code !== 0) throw new Error(`${tool} is not installed: run scripts/setup-host.sh`);
    }
    [dockerd, box] = await Promise.all([startDockerd(), startSshdDevice()]);
    root = checkout(`sovereign-shared-net-${process.pid}-`, configText());
    cpSync(join(repo, 'test/fixtures/vm/dbclient'), join(root, 'vm/dbclient'), { recursive: true });
    await fs.writeFile(join(root, '.env'), Object.entries(pw).map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o600 });
    sqlPort = await freePort();
    env = { DOCKER_HOST: dockerd.host, SOVEREIGN_PORT_SQL_5432: String(sqlPort), SOVEREIGN_PORT_APP_7000: String(await freePort()) };
  } catch (e) {
    console.error('shared-network set-up failed:', e);
    throw e;
  }
});

test.after(async () => {
  // VMs still up after a failure: stop them through the CLI, then by pid.
  for (const [args, dev] of [[['stop', '--sql', '--app'], localRoot()], [['stop', '--sql', '--app', '--device', 'box'], box?.root ?? '']] as const) {
    if (!root || !dev || !['sql', 'app'].some((s) => pidOf(dev, s))) continue;
    await sovereign([...args], { cwd: root, env, signal: AbortSignal.timeout(2 * MIN) }).catch(() => undefined);
    for (const s of ['sql', 'app']) { const p = pidOf(dev, s); if (p && alive(p)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  }
  await Promise.all([box?.cleanup(), dockerd?.stop()]);
  if (root) await fs.rm(root, { recursive: true, force: true });
  if (times.length) console.log(`  times: ${times.join(', ')}`);
});

test('local: `run app:start` boots sql first, then app, which logs in to sql at 192.168.100.2:5432 over the shared LAN', async () => {
  await cli(['run', 'app:start'], 45 * MIN);
  const app = consoleOf(localRoot(), 'app');
  assert.match(app, /\[init\] network: \S+ 192\.168\.100\.3\/24, default via 10\.0\.2\.2/, 'app is on the LAN, with its own uplink');
  assert.match(app, LOGIN, tail(app));
  assert.match(consoleOf(localRoot(), 'sql'), /\[init\] network: \S+ 192\.168\.100\.2\/24/);
  const facts = await statusFacts([]);
  for (const s of ['sql', 'app']) assert.equal([facts[s].running, facts[s].ready, facts[s].pid], [true, true, pidOf(localRoot(), s)], `local status of ${s}: ${JSON.stringify(facts)}`);
});

test('local: stopping app leaves sql running and reachable (its forward, and `sql:test`)', async () => {
  const sqlPid = pidOf(localRoot(), 'sql')!;
  const appPid = pidOf(localRoot(), 'app')!;
  await cli(['stop', '--app'], 3 * MIN);
  assert.not.ok(alive(appPid), 'app stopped');
  assert.ok(alive(sqlPid), 'sql still runs');
  const facts = await statusFacts([]);
  assert.equal([facts.app.running, facts.app.ready, facts.sql.running, facts.sql.ready], [false, false, true, true], JSON.stringify(facts));
  const r = await psql('127.0.0.1', sqlPort);
  assert.is(r.code, 0, r.out);
  assert.is(r.out, '42');
  assert.match(await cli(['run', 'sql:test'], 3 * MIN), 'ALL TESTS PASSED');
  await cli(['stop', '--sql'], 3 * MIN);
  assert.not.ok(alive(sqlPid), 'sql stopped');
});

test('ssh box: `start` over ssh boots both VMs on the box (sql exposes 5432 on the box address), `test` passes', async () => {
  // The owner exposes sql's 5432 on the box's LAN address (host port 15432); app's 7000 stays loopback-only.
  await fs.writeFile(join(root, 'sovereign.config.ts'), configText(`expose: [{ port: 5432, hostPort: ${EXPOSED}, address: '${box!.device.host}' }],`));
  await cli(['start', '--sql', '--app', '--device', 'box'], 45 * MIN, box!.root);
  for (const s of ['sql', 'app']) assert.ok(pidOf(box!.root, s), `${s} runs on the box`);
  assert.match(consoleOf(box!.root, 'app'), LOGIN, tail(consoleOf(box!.root, 'app')));
  const out = await cli(['test', '--sql', '--app', '--device', 'box'], 5 * MIN, box!.root);
  assert.match(out, 'ALL TESTS PASSED', tail(out));
  const facts = await statusFacts(['--device', 'box']);
  for (const s of ['sql', 'app']) assert.equal([facts[s].running, facts[s].ready, facts[s].pid], [true, true, pidOf(box!.root, s)], `status over ssh of ${s}: ${JSON.stringify(facts)}`);
});

test("the owner's laptop (outside the box's namespace) reaches the exposed port through the box's address, and nothing else", async () => {
  const host = box!.device.host!;
  // Exposed: a real login through the box's address.
  const r = await psql(host, EXPOSED);
  assert.is(r.code, 0, r.out);
  assert.is(r.out, '42');
  // Not exposed: app's 7000 (listening in the guest, forwarded on the box's loopback) and sql's loopback forward.
  assert.is(await reachable(host, 7000), false, "app's 7000 is not exposed");
  assert.is(await reachable(host, sqlPort), false, "sql's loopback forward is not on the box's address");
  assert.is(await reachable(host, 5432), false, 'the guest port itself is not on the box');
  // ...while on the box itself the loopback forward answers: the port is there, only not exposed.
  const inside = await psql('127.0.0.1', sqlPort, box!.ns);
  assert.is(inside.code, 0, inside.out);
});

test('ssh box: `stop` over ssh shuts both VMs down cleanly', async () => {
  const pids = ['sql', 'app'].map((s) => pidOf(box!.root, s)!);
  const out = await cli(['stop', '--sql', '--app', '--device', 'box', '--verbose'], 3 * MIN, box!.root);
  for (const p of pids) assert.not.ok(alive(p), `VM ${p} stopped`);
  assert.match(consoleOf(box!.root, 'sql'), /\[init\] stopping PostgreSQL/, 'sql shut down through its init');
  assert.match(consoleOf(box!.root, 'app'), /\[init\] shutting down/, 'app shut down through its init');
  assert.is(out.match(/clean shutdown/g)?.length, 2, tail(out));
});

test.run();
