// The image builder client: docker or podman (same CLI shape), found on PATH, honouring DOCKER_HOST.
import { promises as fs } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { exec } from '../exec.ts';
import { UserError } from '../error.ts';

export type BuilderKind = 'docker' | 'podman';

/**
 * How docker builds here. BuildKit where the CLI has buildx (faster, no deprecation notice); otherwise the
 * legacy builder (Debian 12's docker.io has no buildx), whose "legacy builder is deprecated" notice is
 * dropped from the output: the user can do nothing about it. Podman has one builder.
 */
let buildkit: Promise<boolean> | undefined;
function useBuildKit(kind: BuilderKind): Promise<boolean> {
  if (kind !== 'docker') return Promise.resolve(false);
  if (process.env.DOCKER_BUILDKIT === '0') return Promise.resolve(false);
  buildkit ??= exec('docker', ['buildx', 'version'], { nothrow: true, timeoutMs: 15_000 }).then((r) => r.code === 0, () => false);
  return buildkit;
}

function builderEnv(kind: BuilderKind, withBuildKit: boolean): NodeJS.ProcessEnv {
  return kind === 'docker' ? { ...process.env, DOCKER_BUILDKIT: withBuildKit ? '1' : '0' } : process.env;
}

/** Passes build output on without the legacy builder's deprecation notice (its first line and the indented ones after it). */
export function withoutLegacyNotice(onLine: (line: string) => void): (line: string) => void {
  let inNotice = false;
  return (line) => {
    if (line.startsWith('DEPRECATED: The legacy builder is deprecated')) { inNotice = true; return; }
    if (inNotice && /^\s/.test(line)) return;
    inNotice = false;
    onLine(line);
  };
}

/** Client and server version, e.g. `docker 20.10.24/20.10.24`: tool identity for keys and records. */
export async function builderVersion(kind: BuilderKind): Promise<string> {
  const r = await exec(kind, ['version', '--format', '{{.Client.Version}}/{{.Server.Version}}'], { nothrow: true, timeoutMs: 15_000 });
  return `${kind} ${r.stdout.trim() || 'unknown'}`;
}

/**
 * Resolves the daemon's version (docker) or architecture (podman); throws a UserError (code environment) saying how
 * to start the daemon when it cannot be reached, or which group to join when its socket refuses this user.
 */
export async function checkDaemon(kind: BuilderKind): Promise<string> {
  const args = kind === 'docker' ? ['version', '--format', '{{.Server.Version}}'] : ['info', '--format', '{{.Host.Arch}}'];
  const r = await exec(kind, args, { nothrow: true, timeoutMs: 20_000 }).catch((e: unknown) => {
    if (e instanceof UserError) throw new UserError(`${kind} is not installed`, { code: 'environment', hint: `apt-get install -y ${kind === 'docker' ? 'docker.io' : 'podman'}` });
    throw e;
  });
  if (r.code === 0 && r.stdout.trim()) return r.stdout.trim();
  const where = process.env.DOCKER_HOST ? ` at DOCKER_HOST=${process.env.DOCKER_HOST}` : '';
  const denied = /permission denied/i.test(r.stderr + r.stdout);
  throw new UserError(`cannot reach the ${kind} daemon${where}`, {
    code: 'environment',
    hint: denied
      ? await socketHint(kind)
      : kind === 'docker'
      ? 'start it (`sudo systemctl start docker`, or `sudo dockerd &`), or point DOCKER_HOST at a running daemon'
      : 'check `podman info`; rootless podman needs a user session (XDG_RUNTIME_DIR)',
    details: (r.stderr || r.stdout).trim().split('\n').slice(-5),
  });
}

/** The daemon runs but its socket refuses us: name the group that owns the socket (docker's, by default). */
async function socketHint(kind: BuilderKind): Promise<string> {
  const host = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  const socket = host.startsWith('unix://') ? host.slice('unix://'.length) : undefined;
  const gid = socket ? await fs.stat(socket).then((st) => st.gid, () => undefined) : undefined;
  const groups = await fs.readFile('/etc/group', 'utf8').catch(() => '');
  const group = groups.split('\n').map((l) => l.split(':')).find((f) => gid !== undefined && f[2] === String(gid))?.[0] ?? kind;
  const user = userInfo().username;
  return `the daemon runs, but ${user} may not use its socket${socket ? ` ${socket}` : ''}: add ${user} to the group ${group} that may (sudo usermod -aG ${group} ${user}, then log in again), or run as root`;
}

export interface BuildOptions {
  kind: BuilderKind;
  dockerfile: string;
  context: string;
  buildArgs?: Record<string, string>;
  platform?: string;
  tag: string;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
}

/** Builds an image and resolves its id (`sha256:…`). RUN steps use the host network so they reach the
 * package mirror even when the daemon has no bridge. */
export async function buildImage(o: BuildOptions): Promise<string> {
  const dir = await fs.mkdtemp(join(tmpdir(), 'sovereign-build-'));
  const iidfile = join(dir, 'iid');
  const args = ['build', '--network=host', '--iidfile', iidfile, '-f', o.dockerfile, '-t', o.tag];
  for (const [k, v] of Object.entries(o.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
  if (o.platform) args.push('--platform', o.platform);
  args.push(o.context);
  const withBuildKit = await useBuildKit(o.kind);
  // BuildKit's default progress redraws a terminal; plain gives lines, like the legacy builder.
  if (withBuildKit) args.splice(1, 0, '--progress=plain');
  try {
    await exec(o.kind, args, { env: builderEnv(o.kind, withBuildKit), signal: o.signal, onLine: withoutLegacyNotice((l) => o.onLine?.(l)) }).catch((e: unknown) => {
      if (e instanceof UserError) throw new UserError(`${o.kind} build of ${o.dockerfile} failed`, { details: e.details?.filter((l) => !/legacy builder is deprecated|BuildKit is currently disabled|DOCKER_BUILDKIT=0|environment-variable\.$/.test(l)), hint: 'the build output above says which step failed' });
      throw e;
    });
    return (await fs.readFile(iidfile, 'utf8')).trim();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Imports a root file system (a tar file, or a directory tarred first beside it) as image `tag` for `platform`; resolves its id. */
export async function importImage(kind: BuilderKind, source: string, tag: string, platform: string, signal?: AbortSignal): Promise<string> {
  if (!(await fs.stat(source)).isDirectory()) return importTar(kind, source, tag, platform, signal);
  const work = await fs.mkdtemp(join(dirname(source), '.import-'));
  try {
    const tarFile = join(work, 'rootfs.tar');
    // GNU tar keeps owners, device nodes and hard links; --numeric-owner so host names do not remap ids.
    await exec('tar', ['--numeric-owner', '-C', source, '-cf', tarFile, '.'], { signal });
    return await importTar(kind, tarFile, tag, platform, signal);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/**
 * The image records the platform its files are for: without it an arm64 root would be labelled with the
 * host's architecture, and `build --platform linux/arm64` on top of it would refuse (or pull) the base.
 */
async function importTar(kind: BuilderKind, tarFile: string, tag: string, platform: string, signal?: AbortSignal): Promise<string> {
  const [os, arch, variant] = platform.split('/');
  const args = kind === 'docker' ? ['--platform', platform]
    : ['--os', os, '--arch', arch, ...(variant ? ['--variant', variant] : [])];
  await exec(kind, ['import', ...args, tarFile, tag], { signal });
  return imageId(kind, tag);
}

/** Pulls `ref` for `platform` from its registry; resolves its image id. Failures (no route, unknown tag) are environment errors. */
export async function pullImage(kind: BuilderKind, ref: string, platform: string, signal?: AbortSignal, onLine?: (l: string) => void): Promise<string> {
  const r = await exec(kind, ['pull', '--platform', platform, ref], { signal, nothrow: true, onLine });
  if (r.code !== 0) throw new UserError(`${kind} pull ${ref} failed`, { code: 'environment', details: (r.stderr || r.stdout).trim().split('\n').slice(-3) });
  return imageId(kind, ref);
}

/** Loads a `docker save` archive; resolves the id of the (single) image it holds. */
export async function loadImage(kind: BuilderKind, file: string, signal?: AbortSignal): Promise<string> {
  const r = await exec(kind, ['load', '-i', file], { signal, nothrow: true });
  const loaded = /Loaded image(?:\(s\))?(?: ID)?: *(\S+)/.exec(r.stdout);
  if (r.code !== 0 || !loaded) throw new UserError(`${kind} load -i ${file} failed`, { code: 'environment', details: (r.stderr || r.stdout).trim().split('\n').slice(-3) });
  return imageId(kind, loaded[1].split(',')[0]);
}

/** Removes an image reference (a rejected download), ignoring failure. */
export async function removeImage(kind: BuilderKind, ref: string): Promise<void> {
  await exec(kind, ['rmi', ref], { nothrow: true, timeoutMs: 60_000 });
}

/** What a builder's image id looks like (`sha256:` and 64 hex digits): a cached value must have this shape. */
export const isImageId = (v: unknown): v is string => typeof v === 'string' && /^sha256:[0-9a-f]{64}$/.test(v);

/** The full id of an image reference. */
export async function imageId(kind: BuilderKind, ref: string): Promise<string> {
  const r = await exec(kind, ['image', 'inspect', '--format', '{{.Id}}', ref], { timeoutMs: 30_000 });
  const id = r.stdout.trim();
  return id.includes(':') ? id : `sha256:${id}`;
}

export async function imageExists(kind: BuilderKind, id: string): Promise<boolean> {
  const r = await exec(kind, ['image', 'inspect', '--format', '{{.Id}}', id], { nothrow: true, timeoutMs: 30_000 });
  return r.code === 0;
}

/** Writes the image's file system as a tar (`create` + `export`); the container is removed even on failure or abort. */
export async function exportImage(kind: BuilderKind, imageId: string, destTar: string, signal?: AbortSignal): Promise<void> {
  // A name of our own, so the container can be removed even if `create` is interrupted before printing its id.
  const name = `sovereign-export-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    // The command is never run; it is given because an imported base image has no CMD and create would refuse.
    await exec(kind, ['create', '--name', name, imageId, '/sbin/init'], { signal });
    await exec(kind, ['export', '-o', destTar, name], { signal });
  } finally {
    await exec(kind, ['rm', '-f', name], { nothrow: true, timeoutMs: 60_000 });
  }
}
