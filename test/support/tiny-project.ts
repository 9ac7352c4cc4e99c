// Test fixture for end-to-end CLI tests: a checkout with two tiny busybox services (sql, forge sharing sql's kernel),
// a counting `docker` wrapper, and helpers to read run summaries and device folders.
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { sparseIdentity } from '../../lib/extents.ts';
import { VM_FILES } from '../../lib/vm/files.ts';
import { checkout, sovereign, type CliResult } from './cli.ts';

export interface TinyOptions {
  /** Source of sql's kernel as TypeScript text (default `{ path: 'kernel.bin' }`, a small file written here). */
  kernel?: string;
  /** Extra entries of `devices: { … }` as TypeScript text. */
  devices?: string;
  /** Extra Dockerfile lines for forge (e.g. `RUN ["/bin/busybox", "sleep", "30"]` to make the build slow). */
  forgeDockerfileExtra?: string;
}

export interface TinyProject {
  root: string;
  /** Environment for `sovereign`: the private daemon and the counting docker wrapper first on PATH. */
  env: Record<string, string>;
  /** Every docker invocation so far, one argv line each. */
  dockerCalls(): string[];
  /** `docker build` invocations so far. */
  dockerBuilds(): string[];
  run(args: string[], extra?: { env?: Record<string, string | undefined>; signal?: AbortSignal }): Promise<CliResult>;
  /** Runs with --json and parses the summary from stdout (throws with the output when it is not JSON). */
  runJson(args: string[], extra?: { env?: Record<string, string | undefined> }): Promise<{ code: number; summary: RunSummary; stderr: string }>;
  /** The local device's folder for a service. */
  localDeviceDir(service: string): string;
  cleanup(): void;
}

export interface TaskSummary { task: string; outcome: string; reason?: string; key?: string; bytes?: number }
export interface RunSummary { ok: boolean; interrupted: boolean; bytes: number; tasks: TaskSummary[]; counts: Record<string, number>; warnings: string[] }

/** Contents of the small stand-in kernel (the e2e tests never boot it). */
export const KERNEL_BYTES = Buffer.from('tiny stand-in kernel: deploy tests push it, nothing boots it\n'.repeat(64));
export const SECRETS = 'SQL_PASSWORD=sql-secret-value\nFORGE_TOKEN=forge-secret-value\n';

function configText(o: TinyOptions): string {
  return `import { defineConfig } from 'sovereign';

export default defineConfig({
  services: {
    sql: {
      displayName: 'Tiny SQL',
      guestIp: '192.168.100.2',
      ports: [5432],
      readyMarker: 'TINY READY',
      rootfsSize: '16M',
      dataDiskSize: '32M',
      kernel: ${o.kernel ?? "{ path: 'kernel.bin' }"},
      secrets: ['SQL_PASSWORD'],
    },
    forge: {
      // forge: a tiny stand-in for Forgejo
      displayName: 'Tiny Forge',
      guestIp: '192.168.100.3',
      ports: [8080],
      readyMarker: 'TINY READY',
      memory: 256,
      rootfsSize: '16M',
      dataDiskSize: '32M',
      kernel: { from: 'sql' },
      dependsOn: ['sql'],
      secrets: ['FORGE_TOKEN'],
    },
  },
  devices: {${o.devices ?? ''}},
});
`;
}

/** Writes vm/<name>/{Dockerfile, .dockerignore, busybox, init.sh}: a FROM-scratch image, no registry or debootstrap. */
function payload(root: string, name: string, extra = ''): void {
  const dir = join(root, 'vm', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'Dockerfile'), `FROM scratch\nCOPY busybox /bin/busybox\n${extra ? `${extra}\n` : ''}`);
  // As in the repo's payloads: init.sh is installed by the rootfs step, so it stays out of the image's context.
  writeFileSync(join(dir, '.dockerignore'), 'init.sh\n');
  copyFileSync('/bin/busybox', join(dir, 'busybox'));
  chmodSync(join(dir, 'busybox'), 0o755);
  writeFileSync(join(dir, 'init.sh'), `#!/bin/busybox sh\n# ${name}: tiny e2e guest\n/bin/busybox echo "TINY READY"\nexec /bin/busybox sleep 3600\n`);
}

/** The real docker client (the first on PATH). */
function realDocker(): string {
  const real = (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'docker')).find((p) => existsSync(p));
  if (!real) throw new Error('no docker client on PATH');
  return real;
}

/** A fresh checkout of the tiny two-service project; `dockerHost` is a private daemon (test/support/dockerd.ts). */
export function tinyProject(name: string, dockerHost: string, o: TinyOptions = {}): TinyProject {
  const root = checkout(`sovereign-e2e-${name}-${process.pid}-`, configText(o));
  payload(root, 'sql');
  payload(root, 'forge', o.forgeDockerfileExtra);
  rmSync(join(root, 'vm', 'vault'), { recursive: true, force: true });
  writeFileSync(join(root, 'kernel.bin'), KERNEL_BYTES);
  writeFileSync(join(root, '.env'), SECRETS, { mode: 0o600 });
  // The wrapper lives outside the checkout so it is no input of any task.
  const wrapper = join(root, '..', `${root.split('/').pop()}-bin`);
  mkdirSync(wrapper, { recursive: true });
  const log = join(wrapper, 'docker.log');
  writeFileSync(join(wrapper, 'docker'), `#!/bin/sh\necho "$*" >> '${log}'\nexec '${realDocker()}' "$@"\n`);
  chmodSync(join(wrapper, 'docker'), 0o755);
  const env = { PATH: `${wrapper}${delimiter}${process.env.PATH}`, DOCKER_HOST: dockerHost };
  const dockerCalls = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);
  const run: TinyProject['run'] = (args, extra = {}) => sovereign(args, { cwd: root, env: { ...env, ...extra.env }, signal: extra.signal });
  return {
    root,
    env,
    dockerCalls,
    dockerBuilds: () => dockerCalls().filter((l) => /^(image |buildx )?build\b/.test(l)),
    run,
    async runJson(args, extra) {
      const r = await run([...args, '--json'], extra);
      try {
        return { code: r.code, summary: JSON.parse(r.stdout) as RunSummary, stderr: r.stderr };
      } catch {
        throw new Error(`sovereign ${args.join(' ')} --json printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
      }
    },
    localDeviceDir: (service) => join(root, '.sovereign', 'devices', 'local', 'vm', service),
    cleanup() {
      rmSync(root, { recursive: true, force: true });
      rmSync(wrapper, { recursive: true, force: true });
    },
  };
}

export const sha256 = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** What a device manifest records for a pushed file: the data disk by its sparseIdentity (user data), the rest by sha256. */
export async function identityOf(name: string, path: string): Promise<{ sha256: string; size: number; identity?: 'sparse-v1' }> {
  const size = statSync(path).size;
  return name === VM_FILES.data ? { sha256: await sparseIdentity(path), size, identity: 'sparse-v1' } : { sha256: sha256(path), size };
}
export const mode = (p: string) => statSync(p).mode & 0o777;

/** Outcome of each task in a summary, by task id. */
export const outcomes = (s: RunSummary) => Object.fromEntries(s.tasks.map((t) => [t.task, t.outcome]));
/** Ids of the tasks that did work in a run. */
export const ran = (s: RunSummary) => s.tasks.filter((t) => t.outcome === 'ran').map((t) => t.task).sort();
