// Test fixture: a private docker daemon on its own socket and data root, and a tiny registry-free base image.
import { spawn } from 'node:child_process';
import { promises as fs, openSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../../lib/exec.ts';

export interface Dockerd {
  /** Environment for docker clients: DOCKER_HOST points at the private socket. */
  env: NodeJS.ProcessEnv;
  host: string;
  stop(): Promise<void>;
}

/**
 * Starts dockerd with no bridge and no iptables changes, everything under a fresh temp folder.
 * Callers must `stop()` in a finally; it stops this daemon by pid and removes its folders. `env` is the daemon's
 * environment on top of ours (e.g. an unreachable HTTPS_PROXY: a daemon that cannot reach any upstream registry);
 * `group` owns the socket (dockerd --group) and may use it.
 */
export async function startDockerd(o: { env?: NodeJS.ProcessEnv; group?: string } = {}): Promise<Dockerd> {
  const dir = await fs.mkdtemp(join(tmpdir(), `sov-dockerd-${process.pid}-`));
  // A socket group (as a system daemon's `docker` group): its members reach the socket, so the folder lets them pass.
  if (o.group) await fs.chmod(dir, 0o711);
  const host = `unix://${join(dir, 'docker.sock')}`;
  const log = openSync(join(dir, 'dockerd.log'), 'a');
  const child = spawn('dockerd', [
    '--storage-driver=overlay2', '--bridge=none', '--iptables=false', '--ip-masq=false',
    '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '-H', host, '-p', join(dir, 'docker.pid'),
    ...(o.group ? ['--group', o.group] : []),
  ], { stdio: ['ignore', log, log], env: { ...process.env, ...o.env } });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const env = { ...process.env, DOCKER_HOST: host };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM'); // dockerd unmounts its overlays and stops its containerd on TERM
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(t);
    }
    await unmountUnder(dir);
    await fs.rm(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 150; i++) {
    const r = await exec('docker', ['-H', host, 'version'], { nothrow: true, timeoutMs: 5000 }).catch(() => ({ code: 1 }));
    if (r.code === 0) return { env, host, stop };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const tail = readFileSync(join(dir, 'dockerd.log'), 'utf8').split('\n').slice(-15).join('\n');
  await stop();
  throw new Error(`private dockerd did not start:\n${tail}`);
}

/** Left-over mounts (a killed daemon) would make rm descend into them: unmount deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m) => m?.startsWith(`${dir}/`));
  for (const m of mounts.sort().reverse()) await exec('umount', ['-l', m], { nothrow: true });
}

/**
 * Imports a `FROM scratch` image holding only busybox-static and its applet links (no registry needed).
 * Resolves the image id.
 */
export async function busyboxImage(env: NodeJS.ProcessEnv, tag: string): Promise<string> {
  const dir = await fs.mkdtemp(join(tmpdir(), `sov-busybox-${process.pid}-`));
  try {
    const root = join(dir, 'root');
    await fs.mkdir(join(root, 'bin'), { recursive: true });
    await fs.copyFile('/bin/busybox', join(root, 'bin/busybox'));
    await fs.chmod(join(root, 'bin/busybox'), 0o755);
    const applets = (await exec('/bin/busybox', ['--list'])).stdout.split('\n').filter((a) => a && a !== 'busybox');
    for (const a of applets) await fs.symlink('busybox', join(root, 'bin', a));
    for (const d of ['etc', 'tmp', 'sbin', 'dev', 'proc', 'sys']) await fs.mkdir(join(root, d));
    await fs.writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    const tarFile = join(dir, 'root.tar');
    await exec('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', tarFile, '.']);
    await exec('docker', ['import', tarFile, tag], { env });
    return (await exec('docker', ['image', 'inspect', '--format', '{{.Id}}', tag], { env })).stdout.trim();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
