// Test support for VM tests: the Debian cloud kernel (cached), a tiny busybox rootfs and data disk, a local device, and a RunContext for tasks.
import { promises as fs } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig, type Config, type Device, type ServiceInput } from '../../lib/config.ts';
import type { DeviceSession } from '../../lib/device/device.ts';
import { openSession } from '../../lib/device/session.ts';
import { exec } from '../../lib/exec.ts';
import * as tar from 'tar';
import type { RunContext, RunFlags } from '../../lib/task.ts';
import { fetchKernel, MODULES_ORDER } from '../../lib/vm/kernel.ts';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const TINY_DIR = join(repoRoot, 'test/fixtures/vm/tiny');
const KERNEL_DEB = 'linux-image-cloud-amd64';

/**
 * The Debian cloud kernel and its virtio-net modules through our own `{ deb }` source (the kernel step's
 * modules.tar, unpacked: `*.ko` and `load-order`), cached in `.sovereign/test-cache/` so tests download it once per checkout.
 */
export async function cloudKernel(): Promise<{ kernel: string; modules: string }> {
  const cache = join(repoRoot, '.sovereign/test-cache', KERNEL_DEB);
  const kernel = join(cache, 'kernel');
  const modules = join(cache, 'modules');
  if (!(await present(kernel)) || !(await present(join(modules, MODULES_ORDER)))) {
    const tarFile = join(cache, `.modules-${process.pid}.tar`);
    const staged = join(cache, `.modules-${process.pid}`);
    try {
      await fetchKernel({ deb: KERNEL_DEB }, { root: repoRoot, dest: kernel, modulesDest: tarFile });
      await fs.mkdir(staged, { recursive: true });
      await tar.x({ file: tarFile, cwd: staged });
      await fs.rm(modules, { recursive: true, force: true });
      await fs.rename(staged, modules);
    } finally {
      await fs.rm(tarFile, { force: true });
      await fs.rm(staged, { recursive: true, force: true });
    }
  }
  return { kernel, modules };
}

const present = (p: string) => fs.access(p).then(() => true, () => false);

/** rootfs.img (the Dockerfile's three COPYs, staged by hand: no docker needed) and an empty ext4 data.img in `dir`. */
export async function tinyDisks(dir: string, modules: string): Promise<void> {
  const stage = await fs.mkdtemp(join(tmpdir(), `tiny-root-${process.pid}-`));
  try {
    for (const d of ['bin', 'sbin', 'lib/modules', 'dev', 'proc', 'sys', 'data', 'tmp', 'www']) await fs.mkdir(join(stage, d), { recursive: true });
    await fs.copyFile('/bin/busybox', join(stage, 'bin/busybox'));
    await fs.chmod(join(stage, 'bin/busybox'), 0o755);
    await fs.copyFile(join(TINY_DIR, 'init.sh'), join(stage, 'sbin/init'));
    await fs.chmod(join(stage, 'sbin/init'), 0o755);
    for (const m of await fs.readdir(modules)) await fs.copyFile(join(modules, m), join(stage, 'lib/modules', m));
    await exec('mkfs.ext4', ['-q', '-F', '-d', stage, join(dir, 'rootfs.img'), '32M']);
    await exec('mkfs.ext4', ['-q', '-F', join(dir, 'data.img'), '16M']);
  } finally {
    await fs.rm(stage, { recursive: true, force: true });
  }
}

/**
 * Tear-down for VM tests: SIGKILL the VMs, wait (up to 5 s) until each pid is gone, then remove the test folder,
 * retrying while a dying qemu or its console writer still adds files to it (ENOTEMPTY).
 */
export async function killVmsAndRemove(pids: Iterable<number | undefined>, root: string): Promise<void> {
  const live = [...pids].filter((p): p is number => !!p);
  for (const pid of live) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  const gone = (pid: number) => { try { process.kill(pid, 0); return false; } catch { return true; } };
  for (const until = Date.now() + 5000; Date.now() < until && !live.every(gone);) await new Promise((r) => setTimeout(r, 50));
  if (root) await fs.rm(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
}

/** A free TCP port on 127.0.0.1 (closed again, so the caller can bind it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    }).on('error', reject);
  });
}

/** A config with one service `tiny` (plus fields) and a local qemu device rooted at `deviceRoot`. */
export function tinyConfig(deviceRoot: string, service: Partial<ServiceInput> = {}, device: Partial<Device> = {}): { config: Config; device: Device } {
  const r = resolveConfig({
    services: {
      tiny: { displayName: 'Tiny', guestIp: '192.168.100.9', ports: [8080], readyMarker: 'TINY READY', kernel: { path: 'kernel' }, memory: 256, startTimeout: 120, ...service },
    },
    devices: { dev: { transport: 'local', root: deviceRoot, hypervisor: 'qemu', ...device } as never },
    defaultDevice: 'dev',
  }, 'test');
  if (!r.ok) throw r.error;
  return { config: r.value, device: r.value.devices.get('dev')! };
}

export interface FakeRun {
  ctx: RunContext;
  lines: string[];
  confirms: string[];
}

/** A RunContext for calling a task's check/run directly, on an open session. */
export function fakeRun(config: Config, session: DeviceSession, opts: { deps?: Record<string, string>; flags?: Partial<RunFlags>; confirm?: boolean; signal?: AbortSignal } = {}): FakeRun {
  const lines: string[] = [];
  const confirms: string[] = [];
  const service = config.services.get('tiny')!;
  const ctx = {
    service, config, device: session.device, task: 'tiny:test', root: repoRoot, outDir: '', finalDir: '', key: '0'.repeat(64),
    signal: opts.signal ?? new AbortController().signal,
    flags: { force: false, freshData: false, yes: false, verify: false, purge: false, ...opts.flags },
    dep: (id: string) => ({ task: id, outputHash: opts.deps?.[id] ?? 'none', files: {} }),
    log: (line: string) => { lines.push(line); },
    progress: () => {},
    facts: () => {},
    session: async () => session,
    secrets: async () => ({}),
    confirm: async (q: string) => { confirms.push(q); return opts.confirm ?? false; },
  } as unknown as RunContext;
  return { ctx, lines, confirms };
}

export { openSession };
