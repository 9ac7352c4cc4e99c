// The real PostgreSQL VM driven through the real CLI in a checkout of its own, for the sql VM tests of every
// architecture: a private dockerd, known secrets, a free port, runs that explain their failure, psql, cleanup.
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../lib/exec.ts';
import { checkout, repo, sovereign, type CliResult } from './cli.ts';
import { secretForms, watchCmdlines, type CmdlineWatch } from './cmdline-watch.ts';
import { startDockerd, type Dockerd } from './dockerd.ts';
import { freePort } from './tiny-vm.ts';

export interface TaskSummary { task: string; outcome: string; durationMs?: number; bytes?: number; error?: string }
export interface RunSummary { ok: boolean; durationMs: number; bytes: number; tasks: TaskSummary[] }
export interface Run extends CliResult { secs: number; summary: RunSummary }

export const MIN = 60_000;
export const task = (s: RunSummary, id: string) => s.tasks.find((x) => x.task === id);
const tail = (text: string, n: number) => text.trim().split('\n').slice(-n).join('\n');
export const alive = (pid: number) => { try { return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0] !== 'Z'; } catch { return false; } };

export interface SqlVmOptions {
  /** Device to deploy to (default the built-in `local`); `deviceConfig` adds it to the checkout's config. */
  device?: string;
  /** A `devices:` entry, as TypeScript source, e.g. `{ transport: 'local', arch: 'aarch64' }`. */
  deviceConfig?: string;
  /** sql's startTimeout in seconds, when the shipped one is too short for this machine (emulated CPUs). */
  startTimeout?: number;
  /** Host tools the test needs besides dockerd and psql. */
  tools: string[];
  /**
   * Scan every process's argv for the password all test long (default true). A 20 ms scan over an emulated
   * build of most of an hour costs a CPU; the x86 test proves the same code path keeps it off command lines.
   */
  watchSecrets?: boolean;
}

export interface SqlVm {
  root: string;
  vmDir: string;
  port: number;
  password: string;
  /** The environment runs get: the private dockerd's DOCKER_HOST, the port override. */
  env: Record<string, string>;
  /** `sovereign run ARGS [--device D]`; a failure names the run's last lines, the failed tasks and the VM's last console lines. */
  run(args: string[], timeoutMs: number, extra?: string[]): Promise<Run>;
  /** The same, without asserting success. */
  raw(args: string[], timeoutMs: number): Promise<CliResult>;
  /** psql on this machine against the VM's forwarded port; the password rides the environment, never argv. */
  psql(sql: string): Promise<string>;
  vmPid(): number | undefined;
  consoleLog(): string;
  /** Stops the VM (the CLI, then SIGKILL), dockerd and the checkout; throws if the password reached a command line. */
  close(): Promise<void>;
}

export async function startSqlVm(o: SqlVmOptions): Promise<SqlVm> {
  if (process.getuid?.() !== 0) throw new Error('this test builds the base image as root (CI runs as root)');
  for (const tool of [...o.tools, 'dockerd', 'psql']) {
    if ((await exec('sh', ['-c', `command -v ${tool}`], { nothrow: true })).code !== 0) throw new Error(`${tool} is not installed: run scripts/setup-host.sh`);
  }
  const password = `sov-${randomBytes(12).toString('hex')}`;
  let config = readFileSync(join(repo, 'sovereign.config.ts'), 'utf8');
  const edit = (re: RegExp, to: string) => { const next = config.replace(re, to); if (next === config) throw new Error(`sovereign.config.ts has no ${re}: update test/support/sql-vm.ts`); config = next; };
  if (o.startTimeout) edit(/(\n {4}sql: \{\n[^}]*?startTimeout: )\d+/, `$1${o.startTimeout}`);
  if (o.deviceConfig) edit(/(\n {2}devices: \{\n)/, `$1    ${o.device}: ${o.deviceConfig},\n`);
  const root = checkout(`sovereign-sql-${process.pid}-`, config);
  const device = o.device ?? 'local';
  const vmDir = join(root, `.sovereign/devices/${device}/vm/sql`);
  const port = await freePort();
  const dockerd: Dockerd = await startDockerd();
  // The sql VM's declared secrets, so the test knows the postgres password (the CLI would otherwise generate them).
  const secrets = ['POSTGRES_PASSWORD', 'POSTGRES_FORGEJO_PASSWORD', 'POSTGRES_VAULTWARDEN_PASSWORD'];
  await fs.writeFile(join(root, '.env'), secrets.map((k, i) => `${k}=${i ? randomBytes(12).toString('hex') : password}\n`).join(''), { mode: 0o600 });
  const env = { DOCKER_HOST: dockerd.host, SOVEREIGN_PORT_SQL_5432: String(port) };
  // Every process's argv, all test long (every 20 ms: psql runs live far longer): the password, or its base64, must never appear in one.
  const watch: CmdlineWatch | undefined = o.watchSecrets === false ? undefined : watchCmdlines(secretForms(password), 20);
  const deviceArgs = o.device ? ['--device', o.device] : [];
  const consoleLog = () => { try { return readFileSync(join(vmDir, 'console.log'), 'utf8'); } catch { return '(no console.log)'; } };
  const vmPid = () => { try { return Number(readFileSync(join(vmDir, 'vm.pid'), 'utf8').trim()) || undefined; } catch { return undefined; } };
  const raw = (args: string[], timeoutMs: number) => sovereign(['run', ...args, ...deviceArgs], { cwd: root, env, signal: AbortSignal.timeout(timeoutMs) });

  return {
    root, vmDir, port, password, env, raw, vmPid, consoleLog,
    async run(args, timeoutMs, extra = []) {
      const t = Date.now();
      const r = await raw([...args, ...extra], timeoutMs);
      const secs = (Date.now() - t) / 1000;
      const summary = JSON.parse(await fs.readFile(join(root, '.sovereign/runs/last.json'), 'utf8').catch(() => '{"tasks":[]}')) as RunSummary;
      if (r.code !== 0) {
        const failed = summary.tasks.filter((x) => x.outcome === 'failed').map((x) => `${x.task}: ${x.error}`).join('\n');
        assert.unreachable(`sovereign run ${args.join(' ')} exited ${r.code} after ${secs.toFixed(0)}s\n--- output\n${tail(r.stdout + r.stderr, 40)}\n--- failed tasks\n${failed}\n--- VM console (last lines)\n${tail(consoleLog(), 30)}`);
      }
      return { ...r, secs, summary };
    },
    async psql(sql) {
      const r = await exec('psql', ['-X', '-w', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql], {
        env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' }, nothrow: true, timeoutMs: 30_000,
      });
      assert.is(r.code, 0, `psql -c ${JSON.stringify(sql)} failed: ${r.stderr.trim()}`);
      return r.stdout.trim();
    },
    async close() {
      const hits = watch?.stop() ?? [];
      const pid = vmPid();
      if (pid && alive(pid)) {
        await raw(['sql:stop'], 2 * MIN).catch(() => undefined);
        if (alive(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      }
      await dockerd.stop();
      await fs.rm(root, { recursive: true, force: true });
      if (hits.length) throw new Error(`the postgres password appeared in a command line:\n${hits.join('\n')}`);
    },
  };
}
