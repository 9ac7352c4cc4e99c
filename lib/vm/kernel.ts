// Guest kernel sources: fetch (verified), copy, or cut out of a Debian package (with its NIC modules); and what of a source goes into the key.
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import type { KernelSource } from '../config.ts';
import { Cancelled, UserError } from '../error.ts';
import { exec } from '../exec.ts';
import { copyFileAtomic, renameDurable, tmpName, writeFileAtomic } from '../fsutil.ts';
import { hashFile } from '../hash.ts';
import { type Arch, archSpec, debPackageFor, hostArch } from '../arch.ts';
import { privateApt } from './apt.ts';
import { downloadDeb } from './deb-download.ts';

export interface FetchKernelOptions {
  /** Repo root: `{ path }` sources are relative to it. */
  root: string;
  /** Where the kernel goes (written atomically; nothing is left there on failure). */
  dest: string;
  signal?: AbortSignal;
  progress?: (done: number, total?: number) => void;
  log?: (line: string) => void;
  /** Where modules.tar goes: the guest's NIC modules for `{ deb }` kernels, an empty tar for others. */
  modulesDest?: string;
  /** The device's architecture: a `{ deb }` kernel is that architecture's package (default: this machine's). */
  arch?: Arch;
}

/** The drivers a guest of `arch` loads from modules.tar (lib/arch.ts says which and why). */
export const guestModules = (arch: Arch = defaultArch()) => archSpec(arch).guestModules;
const defaultArch = (): Arch => hostArch() ?? 'x86_64';
/** In modules.tar, beside the flat `*.ko` files: their names in load order (dependencies first), one a line. */
export const MODULES_ORDER = 'load-order';
/** A fixed mtime for modules.tar entries: the same package gives the same bytes (early cutoff downstream). */
const TAR_EPOCH = new Date(946_684_800_000);

/** Puts the kernel of `source` at `opts.dest`. `{ from }` is resolved by the graph (alias), never here. */
export async function fetchKernel(source: KernelSource, opts: FetchKernelOptions): Promise<void> {
  await fs.mkdir(dirname(opts.dest), { recursive: true });
  if ('deb' in source) return kernelFromDeb(source.deb, source.file, { ...opts, arch: opts.arch ?? defaultArch() });
  if ('url' in source) await download(source.url, source.sha256, opts);
  else if ('path' in source) await copyKernel(kernelPath(source.path, opts.root), opts.dest);
  else throw new Error(`kernel { from: '${source.from}' } is shared through the graph, not fetched`);
  // A downloaded or given kernel comes without its modules: it is expected to have its drivers built in.
  if (opts.modulesDest) await writeFileAtomic(opts.modulesDest, EMPTY_TAR);
}

/** Two zero blocks: a valid tar with no entries. */
const EMPTY_TAR = Buffer.alloc(1024);

/**
 * The part of a kernel source that decides its bytes, for the task key: the URL's pinned sha256, the content
 * hash of a `{ path }` file (never the path itself, which may be absolute), or the package name for the
 * device's architecture with the modules taken from it.
 */
export async function kernelKeyInput(source: KernelSource, root: string, arch: Arch = defaultArch()): Promise<unknown> {
  if ('url' in source) return { sha256: source.sha256 }; // the checksum pins the bytes; a mirror URL change is not a change
  if ('path' in source) {
    const file = kernelPath(source.path, root);
    const sum = await hashFile(file).catch(() => {
      throw new UserError(`kernel file not found: ${source.path}`, { code: 'config', hint: 'kernel.path is relative to the repo root (or absolute)' });
    });
    return { fileSha256: sum };
  }
  if ('deb' in source) return { deb: debPackageFor(source.deb, arch), arch: archSpec(arch).deb, file: source.file ?? 'boot/vmlinuz-*', modules: guestModules(arch) };
  return { from: source.from };
}

const kernelPath = (path: string, root: string) => (isAbsolute(path) ? path : resolve(root, path));

async function copyKernel(src: string, dest: string): Promise<void> {
  try { await copyFileAtomic(src, dest); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`kernel file not found: ${src}`, { code: 'config' });
    throw e;
  }
}

/** Streams `url` to a temp file beside `dest`, hashing as it goes; renames only when the sha256 matches. */
async function download(url: string, expected: string, opts: FetchKernelOptions): Promise<void> {
  const tmp = tmpName(opts.dest);
  try {
    const res = await fetch(url, { signal: opts.signal, redirect: 'follow' }).catch((e: Error) => {
      if (opts.signal?.aborted) throw new Cancelled();
      throw new UserError(`kernel download failed: ${url}: ${e.message}`, { code: 'environment', hint: 'check the URL and the network' });
    });
    if (!res.ok || !res.body) throw new UserError(`kernel download failed: ${url}: HTTP ${res.status}`, { code: 'environment' });
    const total = Number(res.headers.get('content-length')) || undefined;
    const hash = createHash('sha256');
    let done = 0;
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    body.on('data', (c: Buffer) => { hash.update(c); done += c.length; opts.progress?.(done, total); });
    await pipeline(body, createWriteStream(tmp, { mode: 0o644 }), { signal: opts.signal });
    const got = hash.digest('hex');
    if (got !== expected) {
      throw new UserError(`kernel checksum mismatch for ${url}: expected sha256 ${expected}, got ${got}`, {
        hint: 'nothing was stored; if the new kernel is intended, put the new sha256 in the config',
      });
    }
    await renameDurable(tmp, opts.dest);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    if (opts.signal?.aborted && !(e instanceof UserError)) throw new Cancelled();
    throw e;
  }
}

/**
 * `apt-get download` of the package for the device's architecture, through a private apt state (so any host
 * fetches any architecture's kernel; `{arch}` in the name becomes Debian's name for it). A metapackage like
 * `linux-image-cloud-arm64` is followed to the real `linux-image-<version>` package; `dpkg -x`, then the
 * `boot/vmlinuz-*` inside.
 */
async function kernelFromDeb(template: string, file: string | undefined, opts: FetchKernelOptions & { arch: Arch }): Promise<void> {
  const pkg = debPackageFor(template, opts.arch);
  // Ours alone: no other user can plant a link or swap the package in it (0711 lets apt's _apt reach its own subfolders).
  const work = await fs.mkdtemp(join(tmpdir(), `sovereign-kernel-${process.pid}-`));
  try {
    await fs.chmod(work, 0o711);
    const apt = await privateApt(join(work, 'apt'), opts.arch, opts.signal);
    const real = await resolveImagePackage(pkg, opts.signal, apt);
    if (real !== pkg) opts.log?.(`${pkg} -> ${real}`);
    const deb = await downloadDeb(real, work, opts.signal, apt);
    const tree = join(work, 'x');
    await fs.mkdir(tree, { mode: 0o700 });
    await exec('dpkg', ['-x', deb, tree], { signal: opts.signal });
    const kernel = await findKernel(tree, file ?? 'boot/vmlinuz-*');
    if (!kernel) throw new UserError(`package ${real} has no ${file ?? 'boot/vmlinuz-*'}`, { code: 'config', hint: 'name a linux-image package, or set kernel.file' });
    if (opts.modulesDest) await writeModulesTar(tree, opts.modulesDest, guestModules(opts.arch), opts.log);
    await copyKernel(kernel, opts.dest);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** Follows `Depends: linux-image-*` from a metapackage to the package that ships the kernel. */
export async function resolveImagePackage(pkg: string, signal?: AbortSignal, aptOptions: string[] = []): Promise<string> {
  let current = pkg;
  for (let hop = 0; hop < 4; hop++) {
    const { stdout, code } = await exec('apt-cache', [...aptOptions, 'depends', current], { signal, nothrow: true });
    if (code !== 0) throw new UserError(`unknown Debian package '${current}'`, { code: 'config', hint: 'check kernel.deb (apt-cache search linux-image)' });
    const next = /^\s*Depends:\s*(linux-image-\S+)/m.exec(stdout)?.[1];
    if (!next || next === current) return current;
    current = next;
  }
  return current;
}

/** `dir/pattern` where the last path part may hold one `*`; the highest match by name. */
async function findKernel(dir: string, pattern: string): Promise<string | undefined> {
  const parts = pattern.split('/');
  const last = parts.pop()!;
  const folder = join(dir, ...parts);
  const [pre, post] = last.includes('*') ? last.split('*', 2) : [last, undefined];
  const names = await fs.readdir(folder).catch(() => [] as string[]);
  const hits = names.filter((n) => (post === undefined ? n === pre : n.startsWith(pre) && n.endsWith(post))).sort();
  return hits.length ? join(folder, hits[hits.length - 1]) : undefined;
}

/**
 * modules.tar from a kernel package's extracted tree: the wanted modules and their dependencies, flat, plus
 * MODULES_ORDER. From the package that holds the kernel, so the modules always match its version.
 * A wanted module the kernel has built in is skipped; one it lacks altogether is an error.
 */
async function writeModulesTar(tree: string, dest: string, wanted: string[], log?: (line: string) => void): Promise<void> {
  const { files, builtin } = await moduleIndex(join(tree, 'lib/modules'));
  const order: string[] = [];
  const visit = async (name: string, chain: string[]): Promise<void> => {
    if (order.includes(name)) return;
    if (chain.includes(name)) throw new UserError(`kernel module dependency cycle: ${[...chain, name].join(' -> ')}`);
    const file = files.get(name);
    if (!file) {
      if (builtin.has(name)) return; // nothing to load
      throw new UserError(`the kernel package has no module ${name}${chain.length ? ` (needed by ${chain[chain.length - 1]})` : ''}`, {
        code: 'config', hint: `guests need ${wanted.join(', ')} (built in or as modules): pick a kernel package that has them`,
      });
    }
    for (const dep of moduleDepends(await fs.readFile(file))) await visit(dep, [...chain, name]);
    order.push(name);
  };
  for (const m of wanted) await visit(m, []);
  const stage = await fs.mkdtemp(join(dirname(dest), '.modules-'));
  try {
    const names = order.map((m) => basename(files.get(m)!));
    for (const [i, m] of order.entries()) {
      await fs.copyFile(files.get(m)!, join(stage, names[i]));
      await fs.chmod(join(stage, names[i]), 0o644);
    }
    await fs.writeFile(join(stage, MODULES_ORDER), names.map((n) => `${n}\n`).join(''), { mode: 0o644 });
    await fs.chmod(join(stage, MODULES_ORDER), 0o644);
    const tmp = tmpName(dest);
    await tar.c({ file: tmp, cwd: stage, portable: true, mtime: TAR_EPOCH }, [...names, MODULES_ORDER].sort());
    await renameDurable(tmp, dest);
    log?.(`guest modules: ${order.join(' ') || '(all built in)'}`);
  } finally {
    await fs.rm(stage, { recursive: true, force: true });
  }
}

/** Every `*.ko` under lib/modules by module name (`-` read as `_`, as the kernel does), and the built-in names. */
async function moduleIndex(dir: string): Promise<{ files: Map<string, string>; builtin: Set<string> }> {
  const files = new Map<string, string>();
  const builtin = new Set<string>();
  const name = (p: string) => basename(p).replace(/\.ko$/, '').replace(/-/g, '_');
  for (const rel of (await fs.readdir(dir, { recursive: true }).catch(() => [] as string[])).sort()) {
    if (rel.endsWith('.ko')) files.set(name(rel), join(dir, rel));
    if (basename(rel) === 'modules.builtin') {
      for (const line of (await fs.readFile(join(dir, rel), 'utf8')).split('\n')) if (line.trim()) builtin.add(name(line.trim()));
    }
  }
  return { files, builtin };
}

/** The `depends=` entry of a module's .modinfo section (NUL-separated key=value strings): what modprobe would load first. */
export function moduleDepends(ko: Buffer): string[] {
  for (let at = ko.indexOf('depends='); at >= 0; at = ko.indexOf('depends=', at + 1)) {
    if (at > 0 && ko[at - 1] !== 0) continue;
    const end = ko.indexOf(0, at);
    return ko.subarray(at + 8, end < 0 ? undefined : end).toString('utf8').split(',').map((d) => d.trim().replace(/-/g, '_')).filter(Boolean);
  }
  return [];
}
