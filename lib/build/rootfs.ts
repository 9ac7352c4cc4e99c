// rootfs.img from an exported image tar: staged as the current user, `mkfs.ext4 -d`, then a debugfs pass
// applies what an unprivileged extraction cannot (owners, modes, device nodes) and fixed times. No root, no mount.
import { promises as fs, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import * as tar from 'tar';
import { exec } from '../exec.ts';
import { Cancelled, UserError } from '../error.ts';
import { dfsQuote, e2fsEnv, runDebugfs, seededUuid, sparseFile } from './ext4.ts';
import { isBuildState, linksToBuildState, normaliseStaged } from './build-state.ts';

/** Every inode's times. A fixed date, not the build's, so the same tar gives the same bytes. */
export const ROOTFS_EPOCH = 946_684_800; // 2000-01-01T00:00:00Z

export interface RootfsOptions {
  /** `docker export` output. */
  tar: string;
  out: string;
  sizeBytes: number;
  /** The service's init.sh: installed as /sbin/init.sh (0755), /sbin/init links to it. */
  initSh: string;
  /** Optional shared shell library, installed as /sbin/init-lib.sh for init.sh to source. */
  initLib?: string;
  /** The kernel step's modules.tar: its files go to /lib/modules/sovereign (nothing when the tar is empty). */
  modulesTar?: string;
  /** Temp space (staging needs about the image's size); a private folder is made inside it. */
  workDir: string;
  /** Derives the file-system UUID and directory hash seed: same seed and tar, same bytes. */
  seed: string;
  /** Config field named when the content does not fit (default `rootfsSize`). */
  sizeField?: string;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, label: string) => void;
}

/** Owner and permission bits of a path, as the tar header says (not as extraction left them). */
interface Meta { uid: number; gid: number; perm: number }
interface DeviceNode extends Meta { path: string; type: 'c' | 'b' | 'p'; major: number; minor: number }
interface Staged { path: string; st: Stats }

const DEVICES: Array<[string, number, number]> = [
  ['dev/console', 5, 1], ['dev/null', 1, 3], ['dev/zero', 1, 5], ['dev/tty', 5, 0],
  ['dev/random', 1, 8], ['dev/urandom', 1, 9], ['dev/vsock', 10, 121], ['dev/net/tun', 10, 200],
];
/** Docker adds this to every container; it has no place in a VM. */
const DROP = new Set(['.dockerenv']);

export async function buildRootfs(o: RootfsOptions): Promise<void> {
  const stage = await fs.mkdtemp(join(o.workDir, 'rootfs-'));
  const root = join(stage, 'root');
  const step = (n: number, label: string) => { if (o.signal?.aborted) throw new Cancelled(); o.onProgress?.(n, 4, label); };
  try {
    step(0, 'extracting image');
    const { meta, devices } = await extract(o.tar, root);
    await normaliseStaged(root, ROOTFS_EPOCH, resolveIn);
    step(1, 'installing init');
    await installInit(root, o, meta);
    if (o.modulesTar) await installModules(root, o.modulesTar, meta);
    const nodes = await placeDevices(root, devices);
    const staged = await walk(root);
    checkFits(staged, o);
    step(2, 'mkfs.ext4');
    await mkfs(root, o, staged.length + nodes.length, stage);
    step(3, 'owners, device nodes, times');
    const env = await e2fsEnv(stage, ROOTFS_EPOCH);
    await runDebugfs(o.out, debugfsScript(staged, meta, nodes), env, o.signal);
    // The superblock counts bytes written over the image's life, which differ with the script (e.g. as root
    // fewer owner changes are needed): reset it in a pass of its own, whose writes are always the same.
    await runDebugfs(o.out, 'ssv kbytes_written 0\n', env, o.signal);
    step(4, 'done');
  } catch (e) {
    await fs.rm(o.out, { force: true });
    throw e;
  } finally {
    await fs.rm(stage, { recursive: true, force: true });
  }
}

/** Unpacks as the current user; ownership, modes and special files are recorded from the headers. */
async function extract(tarFile: string, root: string): Promise<{ meta: Map<string, Meta>; devices: DeviceNode[] }> {
  await fs.mkdir(root);
  const meta = new Map<string, Meta>();
  const devices: DeviceNode[] = [];
  const links: Array<{ path: string; target: string }> = [];
  const problems: string[] = [];
  await tar.x({
    file: tarFile,
    cwd: root,
    preserveOwner: false,
    noMtime: true, // every time is set later; one syscall less per file
    onwarn: (code, message) => { if (code !== 'TAR_ENTRY_UNSUPPORTED' && code !== 'TAR_ENTRY_INFO') problems.push(`${code}: ${message}`); },
    filter: (p, entry) => {
      const e = entry as tar.ReadEntry;
      const path = clean(p);
      if (path === undefined || DROP.has(path)) return false;
      // Logs, caches, machine ids and install-time keys: they record the build, not the recipe (build-state.ts).
      if (isBuildState(path, e.type === 'File' || e.type === 'OldFile' || e.type === 'Link')) return false;
      if (e.type === 'SymbolicLink' && linksToBuildState(path, e.linkpath ?? '')) return false;
      if (e.type === 'Link' && isBuildState(clean(e.linkpath ?? '') ?? '', true)) return false;
      const m = { uid: e.uid ?? 0, gid: e.gid ?? 0, perm: (e.mode ?? 0o644) & 0o7777 };
      const type = e.type === 'CharacterDevice' ? 'c' : e.type === 'BlockDevice' ? 'b' : e.type === 'FIFO' ? 'p' : undefined;
      if (type) { devices.push({ ...m, path, type, major: e.header.devmaj ?? 0, minor: e.header.devmin ?? 0 }); return false; }
      meta.set(path, m);
      // node-tar would strip the leading / of absolute targets (/etc/alternatives/…): symlinks are made by us.
      if (e.type === 'SymbolicLink') { links.push({ path, target: e.linkpath ?? '' }); return false; }
      // Staged copies must stay readable by us for mkfs (e.g. a 0000 file); the real mode is applied later.
      if (e.mode !== undefined) e.mode |= 0o600;
      return true;
    },
  });
  for (const l of links) await symlinkIn(root, l.path, l.target).catch((e: Error) => problems.push(`${l.path}: ${e.message}`));
  if (problems.length) throw new UserError(`could not unpack the image tar ${tarFile}`, { details: problems.slice(0, 10) });
  return { meta, devices };
}

/** Creates a symlink with its target verbatim; refuses to pass through a staged symlink (it could point outside root). */
async function symlinkIn(root: string, path: string, target: string): Promise<void> {
  await parentsIn(root, path);
  await fs.symlink(target, join(root, path));
}

/**
 * Makes the parent folders of `path` inside `root`, checking each with lstat: a staged symlink (which the image
 * controls, and which may point at a host folder) is never passed through.
 */
async function parentsIn(root: string, path: string): Promise<void> {
  const parts = path.split('/');
  for (let i = 1; i < parts.length; i++) {
    const st = await fs.lstat(join(root, ...parts.slice(0, i))).catch(() => undefined);
    if (!st) { await fs.mkdir(join(root, ...parts.slice(0, i))); continue; }
    if (!st.isDirectory()) throw new Error(`parent ${parts.slice(0, i).join('/')} is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}`);
  }
}

/** `./usr/bin/` -> `usr/bin`; undefined for paths that would leave the root. */
function clean(p: string): string | undefined {
  const n = posix.normalize(`/${p}`).replace(/\/+$/, '').slice(1);
  return n.split('/').includes('..') ? undefined : n;
}

/** Resolves `rel` inside `root` following symlinks as the guest would (absolute targets stay in root). */
async function resolveIn(root: string, rel: string): Promise<string> {
  const todo = rel.split('/').filter(Boolean);
  const done: string[] = [];
  for (let hops = 0; todo.length; ) {
    const part = todo.shift()!;
    if (part === '.') continue;
    if (part === '..') { done.pop(); continue; }
    const st = await fs.lstat(join(root, ...done, part)).catch(() => undefined);
    if (!st?.isSymbolicLink()) { done.push(part); continue; }
    if (++hops > 40) throw new UserError(`too many symlinks resolving /${rel} in the image`);
    const target = await fs.readlink(join(root, ...done, part));
    if (target.startsWith('/')) done.length = 0;
    todo.unshift(...target.split('/').filter(Boolean));
  }
  return done.join('/');
}

/** /sbin/init.sh (0755, root) and /sbin/init -> init.sh, wherever /sbin really is (merged /usr). */
async function installInit(root: string, o: RootfsOptions, meta: Map<string, Meta>): Promise<void> {
  const sbin = await resolveIn(root, 'sbin');
  await fs.mkdir(join(root, sbin), { recursive: true });
  const put = async (name: string, from: string, perm: number) => {
    await fs.rm(join(root, sbin, name), { force: true, recursive: true });
    await fs.copyFile(from, join(root, sbin, name));
    meta.set(posix.join(sbin, name), { uid: 0, gid: 0, perm });
  };
  await put('init.sh', o.initSh, 0o755);
  if (o.initLib) await put('init-lib.sh', o.initLib, 0o644);
  await fs.rm(join(root, sbin, 'init'), { force: true, recursive: true });
  await fs.symlink('init.sh', join(root, sbin, 'init'));
  meta.set(posix.join(sbin, 'init'), { uid: 0, gid: 0, perm: 0o777 });
}

/** Where guest modules go; init-lib.sh insmods the files its `load-order` names (lib/vm/kernel.ts writes both). */
export const MODULES_DIR = 'lib/modules/sovereign';

/** The kernel step's modules.tar (flat: `*.ko` and their load order), unpacked into MODULES_DIR as root-owned 0644 files. */
async function installModules(root: string, tarFile: string, meta: Map<string, Meta>): Promise<void> {
  const names: string[] = [];
  await tar.t({ file: tarFile, onReadEntry: (e) => { names.push(e.path); } });
  if (!names.length) return; // a kernel with its drivers built in
  const bad = names.filter((n) => n.includes('/') || n.startsWith('.'));
  if (bad.length) throw new UserError(`modules.tar has unexpected entries: ${bad.slice(0, 5).join(', ')}`);
  const dir = posix.join(await resolveIn(root, posix.dirname(MODULES_DIR)), posix.basename(MODULES_DIR));
  for (let d = dir; d !== '.' && !meta.has(d); d = posix.dirname(d)) meta.set(d, { uid: 0, gid: 0, perm: 0o755 });
  await fs.rm(join(root, dir), { recursive: true, force: true });
  await fs.mkdir(join(root, dir), { recursive: true });
  await tar.x({ file: tarFile, cwd: join(root, dir), preserveOwner: false, noMtime: true, strict: true });
  for (const n of names) meta.set(posix.join(dir, n), { uid: 0, gid: 0, perm: 0o644 });
}

/** The standard device nodes plus the tar's own; staged placeholders (docker's empty dev/console) are removed. */
async function placeDevices(root: string, fromTar: DeviceNode[]): Promise<DeviceNode[]> {
  const std: DeviceNode[] = DEVICES.map(([path, major, minor]) => ({ path, type: 'c', major, minor, uid: 0, gid: 0, perm: 0o666 }));
  const nodes = [...std, ...fromTar.filter((d) => !std.some((s) => s.path === d.path))];
  for (const d of nodes) {
    // The image made these folders (and may have made /dev or /dev/net a link to a host folder): never follow one.
    await parentsIn(root, d.path).catch((e: Error) => {
      throw new UserError(`the image's /${d.path} cannot hold a device node: ${e.message}`, {
        hint: 'device folders (/dev, /dev/net, …) must be real folders in the image, not symlinks',
      });
    });
    await fs.rm(join(root, d.path), { force: true, recursive: true }); // a link itself is removed, never its target
  }
  return nodes;
}

/** Every staged path ('' is the root), sorted so the script is the same whatever readdir order. */
async function walk(root: string): Promise<Staged[]> {
  const out: Staged[] = [{ path: '', st: await fs.lstat(root) }];
  const visit = async (rel: string) => {
    for (const name of (await fs.readdir(join(root, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = await fs.lstat(join(root, path));
      out.push({ path, st });
      if (st.isDirectory()) await visit(path);
    }
  };
  await visit('');
  return out;
}

const BLOCK = 4096;
const MiB = 1024 * 1024;

/** Bytes the content needs: data blocks, inode tables, and room for the journal and group metadata. */
function neededBytes(staged: Staged[]): number {
  let blocks = 0;
  for (const { st } of staged) blocks += st.isSymbolicLink() ? (st.size >= 60 ? 1 : 0) : Math.max(st.isDirectory() ? 1 : 0, Math.ceil(st.size / BLOCK));
  const raw = blocks * BLOCK * 1.05 + staged.length * 2 * 256 + 48 * MiB;
  return Math.ceil(raw / (64 * MiB)) * 64 * MiB;
}

function tooSmall(staged: Staged[], o: RootfsOptions): UserError {
  const need = neededBytes(staged) / MiB;
  const field = o.sizeField ?? 'rootfsSize';
  return new UserError(`the image's files do not fit in a ${Math.round(o.sizeBytes / MiB)}M rootfs: they need about ${need}M`, {
    hint: `raise ${field} in sovereign.config.ts to at least '${need}M'`,
  });
}

function checkFits(staged: Staged[], o: RootfsOptions): void {
  const data = staged.reduce((n, { st }) => n + (st.isFile() ? Math.ceil(st.size / BLOCK) * BLOCK : 0), 0);
  if (data > o.sizeBytes) throw tooSmall(staged, o);
}

async function mkfs(root: string, o: RootfsOptions, entries: number, stage: string): Promise<void> {
  await sparseFile(o.out, o.sizeBytes);
  const inodes = Math.max(Math.floor(o.sizeBytes / 16384), Math.ceil(entries * 1.25) + 1024);
  const uuid = seededUuid(o.seed, 'uuid');
  // nodiscard and lazy_itable_init are pinned: mke2fs would otherwise choose them from the build host.
  const extended = `hash_seed=${seededUuid(o.seed, 'hash_seed')},root_owner=0:0,nodiscard,lazy_itable_init=1`;
  const args = ['-F', '-q', '-L', 'rootfs', '-N', String(inodes), '-U', uuid, '-E', extended, '-d', root, o.out];
  const r = await exec('mkfs.ext4', args, { env: await e2fsEnv(stage, ROOTFS_EPOCH), signal: o.signal, nothrow: true });
  if (r.code === 0) return;
  const text = r.stderr + r.stdout;
  if (/allocate (block|inode)|No space left|too many inodes/i.test(text)) throw tooSmall(await walk(root), o);
  throw new UserError(`mkfs.ext4 failed building ${o.out} (exit ${r.code})`, { details: text.trim().split('\n').slice(-10) });
}

/**
 * i_mode: the staged file's type with the header's permission bits. What sovereign made itself (no tar
 * header: the root, parents it created) gets fixed modes, never the builder's umask.
 */
function modeOf(st: Stats, m: Meta | undefined, isRoot: boolean): number {
  const perm = m ? m.perm : isRoot || st.isDirectory() || st.mode & 0o111 ? 0o755 : 0o644;
  return (st.mode & 0o170000) | perm;
}

/** Owners and modes, then device nodes, then times last (mknod stamps the current time on the node and its directory). */
function debugfsScript(staged: Staged[], meta: Map<string, Meta>, nodes: DeviceNode[]): string {
  const lines: string[] = [];
  const setMeta = (p: string, uid: number, gid: number, mode: number, st?: Stats) => {
    // mkfs -d copied the staged owner and mode: only what differs needs a command (most, when run as root).
    if (st?.uid !== uid) lines.push(`sif ${p} uid ${uid}`);
    if (st?.gid !== gid) lines.push(`sif ${p} gid ${gid}`);
    if (st?.mode !== mode) lines.push(`sif ${p} mode 0${mode.toString(8)}`);
  };
  for (const { path, st } of staged) {
    const m = meta.get(path);
    setMeta(dfsQuote(`/${path}`), m?.uid ?? 0, m?.gid ?? 0, modeOf(st, m, path === ''), st);
  }
  const typeBits = { c: 0o020000, b: 0o060000, p: 0o010000 };
  for (const d of nodes) {
    // mknod links a name in the current directory: an absolute path would allocate an inode and link nothing.
    lines.push(`cd ${dfsQuote(`/${posix.dirname(d.path)}`)}`);
    lines.push(`mknod ${dfsQuote(posix.basename(d.path))} ${d.type === 'p' ? 'p' : `${d.type} ${d.major} ${d.minor}`}`);
    setMeta(dfsQuote(`/${d.path}`), d.uid, d.gid, typeBits[d.type] | d.perm);
  }
  lines.push('cd /');
  const all = [...staged.map((s) => `/${s.path}`), '/lost+found', ...nodes.map((d) => `/${d.path}`)];
  for (const p of all) for (const f of ['atime', 'mtime', 'ctime', 'crtime']) lines.push(`sif ${dfsQuote(p)} ${f} @${ROOTFS_EPOCH}`);
  return `${lines.join('\n')}\n`;
}
