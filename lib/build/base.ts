// The base image without a registry: a Debian root for the device's architecture (mmdebstrap, rootless and
// reproducible, or debootstrap as root), imported into the builder with that architecture's platform.
import { promises as fs, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { type Arch, archSpec, hostArch } from '../arch.ts';
import { exec } from '../exec.ts';
import { UserError } from '../error.ts';
import { which } from '../tools.ts';
import { checkDaemon, importImage, type BuilderKind } from './builder.ts';
import { rootlessProblem } from './rootless.ts';

export type Bootstrapper = 'mmdebstrap' | 'debootstrap';

export interface BaseOptions {
  kind: BuilderKind;
  suite: string;
  /** debootstrap/mmdebstrap variant (default minbase). */
  variant?: string;
  include?: string[];
  /** The device's architecture: a foreign one runs its package scripts under qemu-user-static (binfmt). */
  arch: Arch;
  /** Default: mmdebstrap when installed, else debootstrap. */
  tool?: Bootstrapper;
  tag: string;
  /** Temp space (~250 MB); a private folder is made inside it and removed afterwards. */
  workDir: string;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
}

/**
 * File times inside the tar mmdebstrap writes (2024-01-01): with the same mirror content, two runs give the
 * same bytes. A fixed date rather than "now", which would differ on every run.
 */
export const BASE_EPOCH = 1_704_067_200;

/** mmdebstrap when installed: it runs as an ordinary user (`--mode=unshare`) and its tar is reproducible. */
export async function bootstrapper(): Promise<Bootstrapper> {
  return (await which('mmdebstrap')) ? 'mmdebstrap' : 'debootstrap';
}

/** Builds the Debian root with the default mirror (the machine's apt sources decide) and imports it; resolves the image id. */
export async function buildBase(o: BaseOptions): Promise<string> {
  const tool = o.tool ?? (await bootstrapper());
  await checkCanBootstrap(tool, o.arch);
  await checkDaemon(o.kind);
  const work = await fs.mkdtemp(join(o.workDir, 'base-'));
  const platform = archSpec(o.arch).platform;
  try {
    if (tool === 'mmdebstrap') {
      const tar = join(work, 'root.tar');
      await mmdebstrap(o, tar);
      return await importImage(o.kind, tar, o.tag, platform, o.signal);
    }
    const target = join(work, 'root');
    await debootstrap(o, target);
    return await importImage(o.kind, target, o.tag, platform, o.signal);
  } finally {
    // debootstrap mounts proc/sys in the target; an aborted run can leave them, and rm must not descend into them.
    await unmountUnder(work);
    if (mountsUnder(work).length === 0) await fs.rm(work, { recursive: true, force: true });
  }
}

/** mmdebstrap's mode for this user: root's needs no subordinate ids or user namespace; an ordinary user gets unshare. */
export function bootstrapMode(): 'root' | 'unshare' {
  return process.getuid?.() === 0 ? 'root' : 'unshare';
}

/** What this machine lacks to bootstrap `arch` with `tool` as this user, as a UserError naming the fix (exit 4). */
export async function checkCanBootstrap(tool: Bootstrapper, arch: Arch): Promise<void> {
  const root = process.getuid?.() === 0;
  if (tool === 'debootstrap' && !root) {
    throw new UserError('building the base image with debootstrap needs root (it chroots and creates device nodes)', {
      code: 'environment',
      hint: 'sudo apt-get install mmdebstrap uidmap: mmdebstrap builds the base as an ordinary user (scripts/setup-host.sh installs both)',
    });
  }
  if (tool === 'mmdebstrap' && !root) {
    const idmap = !!(await which('newuidmap')) && !!(await which('newgidmap'));
    const problem = rootlessProblem({ name: userInfo().username, uid: process.getuid?.() ?? -1 }, { idmap });
    if (problem) throw problem;
  }
  if (arch !== hostArch() && !foreignRunnable(arch)) {
    throw new UserError(`building a ${archSpec(arch).deb} base on this machine needs qemu-user-static registered with binfmt_misc (qemu-${arch})`, {
      code: 'environment', hint: 'sudo scripts/setup-host.sh (installs qemu-user-static and binfmt-support and enables qemu-' + arch + ')',
    });
  }
}

/** Whether the kernel runs `arch` binaries through qemu-user (binfmt_misc entry present and enabled). */
function foreignRunnable(arch: Arch): boolean {
  try { return readFileSync(`/proc/sys/fs/binfmt_misc/qemu-${arch}`, 'utf8').startsWith('enabled'); } catch { return false; }
}

/** The recipe's arguments, shared by both tools (bench/base-modes.ts runs them too). */
export const variantArgs = (o: Pick<BaseOptions, 'variant' | 'arch' | 'include'>) => [`--variant=${o.variant ?? 'minbase'}`, `--arch=${archSpec(o.arch).deb}`, ...(o.include?.length ? [`--include=${o.include.join(',')}`] : [])];

async function mmdebstrap(o: BaseOptions, tar: string): Promise<void> {
  // unshare: an ordinary user is root in a user namespace of its subordinate ids. Package lists and caches are
  // not kept (mmdebstrap's default cleanup): they would only bloat every image built on top.
  const mode = bootstrapMode();
  o.onLine?.(`mmdebstrap --mode=${mode} as ${userInfo().username}${mode === 'unshare' ? ' (root only inside a user namespace of its subordinate ids)' : ''}`);
  await exec('mmdebstrap', [`--mode=${mode}`, ...variantArgs(o), o.suite, tar], {
    env: { ...process.env, SOURCE_DATE_EPOCH: String(BASE_EPOCH) }, signal: o.signal, onLine: (l) => o.onLine?.(l),
  });
}

async function debootstrap(o: BaseOptions, target: string): Promise<void> {
  await exec('debootstrap', [...variantArgs(o), o.suite, target], { signal: o.signal, onLine: (l) => o.onLine?.(l) });
  await unmountUnder(target);
  // Package lists and caches would only bloat every image built on top.
  for (const d of ['var/cache/apt/archives', 'var/lib/apt/lists']) await clearDir(join(target, d));
}

/** Mount points at or under `dir`, from `mountinfo` text (default: this process's). */
export function mountsUnder(dir: string, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  return mountinfo.split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => !!m).map(unescapeMount)
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** mountinfo writes space, tab, newline and backslash in paths as octal escapes (`\040`): a path with a space must still match. */
const unescapeMount = (m: string) => m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

async function unmountUnder(dir: string): Promise<void> {
  for (const m of mountsUnder(dir).sort().reverse()) await exec('umount', ['-l', m], { nothrow: true });
}

async function clearDir(dir: string): Promise<void> {
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    const p = join(dir, name);
    if ((await fs.lstat(p)).isFile() && (name.endsWith('.deb') || name.includes('_'))) await fs.rm(p);
  }
}
