// Test fixture: Debian's docker-registry on loopback, the stand-in for upstream registries (codeberg.org, Docker Hub).
import { spawn } from 'node:child_process';
import { promises as fs, closeSync, copyFileSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../../lib/exec.ts';

export interface Registry {
  /** `127.0.0.1:<port>`: the registry host for image references (docker allows plain HTTP to loopback). */
  host: string;
  stop(): Promise<void>;
}

const freePort = () => new Promise<number>((resolve, reject) => {
  const s = createServer().once('error', reject).listen(0, '127.0.0.1', () => {
    const { port } = s.address() as { port: number };
    s.close(() => resolve(port));
  });
});

/** Starts a registry with its storage in a temp folder; `stop()` kills it by pid and removes the folder. */
export async function startRegistry(): Promise<Registry> {
  const dir = await fs.mkdtemp(join(tmpdir(), `sov-registry-${process.pid}-`));
  const port = await freePort();
  await fs.writeFile(join(dir, 'config.yml'), `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const log = openSync(join(dir, 'registry.log'), 'a');
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', log, log] });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) { child.kill('SIGTERM'); await exited; }
    await fs.rm(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false);
    if (up) return { host: `127.0.0.1:${port}`, stop };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const tail = readFileSync(join(dir, 'registry.log'), 'utf8').split('\n').slice(-10).join('\n');
  await stop();
  throw new Error(`docker-registry did not start:\n${tail}`);
}

/**
 * Builds a STAND-IN upstream image — `base` plus `files` (path in the image -> local file, mode kept) — pushes it to
 * the registry as `path` (e.g. `forgejo/forgejo:11.0.15`) and removes it locally, so sovereign has to pull it.
 * Resolves its image id.
 */
export async function pushStandInImage(o: { dockerEnv: NodeJS.ProcessEnv; registry: Registry; path: string; base: string; files: Record<string, string> }): Promise<string> {
  const ctx = await fs.mkdtemp(join(tmpdir(), 'sov-standin-image-'));
  const docker = (args: string[]) => exec('docker', args, { env: { ...o.dockerEnv, DOCKER_BUILDKIT: '0' } });
  try {
    const copies = Object.entries(o.files).map(([dest, src], i) => { copyFileSync(src, join(ctx, `f${i}`)); return `COPY f${i} ${dest}`; });
    await fs.writeFile(join(ctx, 'Dockerfile'), `FROM ${o.base}\n${copies.join('\n')}\n`);
    const ref = `${o.registry.host}/${o.path}`;
    await docker(['build', '-q', '-t', ref, ctx]);
    await docker(['push', ref]);
    const id = (await docker(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim();
    await docker(['rmi', ref]);
    return id;
  } finally {
    await fs.rm(ctx, { recursive: true, force: true });
  }
}
