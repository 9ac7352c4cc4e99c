// Content hashing: sha256 of files (with a stat cache so unchanged large files are not re-read), folders and canonical JSON.
import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, promises as fs, readdirSync, readFileSync, readlinkSync, statSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import dockerignoreModule from '@balena/dockerignore';
import { changedWhileHashed, dataExtents, readRanges, type Extents } from './extents.ts';
import { writeFileAtomic } from './fsutil.ts';
import { isObject } from './guards.ts';

// The package is CommonJS with `module.exports = fn` and `.default = fn`; its typings only describe `.default`.
const dockerignore = ((dockerignoreModule as unknown as { default?: typeof dockerignoreModule }).default ?? dockerignoreModule) as unknown as typeof dockerignoreModule.default;

/** One-shot where Node has it (20.12+): half the cost of a Hash object, and a no-op run hashes ~250,000 small strings. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string | Buffer, encoding: 'hex') => string }).hash;
export const sha256 = oneShot ? (data: string | Buffer) => oneShot('sha256', data, 'hex') : (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** JSON with object keys sorted at every level, so equal values hash equally. */
export function canonicalJson(value: unknown): string {
  // Written out rather than a JSON.stringify replacer (which copies every object): keys are hashed per task, and
  // the output is byte-for-byte what that replacer gave, so existing keys stay valid.
  return canon(value, '') ?? (undefined as unknown as string);
}

/** canonicalJson of a flat dictionary of strings (a key's parts), byte for byte, without the general walk: a no-op run
 * serialises one per planned task. Its names are never array-index-like, so plain sorting gives canonicalJson's order. */
export function flatJson(o: Record<string, string>): string {
  let out = '';
  for (const k of Object.keys(o).sort()) out += `${out ? ',' : ''}${quote(k)}:${quote(o[k])}`;
  return `{${out}}`;
}

/** An array-index-like key, which JavaScript objects always list first. */
const isIndex = (k: string) => { const n = Number(k); return Number.isInteger(n) && n >= 0 && n < 4294967295 && String(n) === k; };

/** What JSON.stringify escapes in a string (controls, quote, backslash, surrogates); most strings here have none. */
const ESCAPED = /[\u0000-\u001f"\\\ud800-\udfff]/;
/** JSON.stringify of a string, without its cost for the hex digests and names that need no escaping. */
const quote = (s: string) => (ESCAPED.test(s) ? JSON.stringify(s) : `"${s}"`);

function canon(v: unknown, key: string): string | undefined {
  if (typeof v === 'string') return quote(v);
  if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') v = (v as { toJSON(k: string): unknown }).toJSON(key);
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x, i) => canon(x, String(i)) ?? 'null').join(',')}]`;
  const o = v as Record<string, unknown>;
  // As an object rebuilt from sorted keys would list them: integer-like keys first, in numeric order.
  const keys = Object.keys(o);
  let ints = 0;
  while (ints < keys.length && isIndex(keys[ints])) ints++;
  // One string grown in place rather than an array of pieces joined: a no-op run canonicalises ~35,000 keys' parts.
  let out = '';
  for (const k of ints ? [...keys.slice(0, ints), ...keys.slice(ints).sort()] : keys.sort()) {
    const s = canon(o[k], k);
    if (s !== undefined) out += `${out ? ',' : ''}${quote(k)}:${s}`;
  }
  return `{${out}}`;
}

export type Progress = (done: number, total: number) => void;

/** A file's identity for the stat cache: size, mtime (ns), ctime (ns) and inode, space-separated. */
const fileId = (st: BigIntStats) => `${st.size} ${st.mtimeNs} ${st.ctimeNs} ${st.ino}`;
/** A folder's identity (its remembered listing, the record index): adding, removing or renaming an entry moves its
 * mtime and ctime. */
export const folderId = (st: BigIntStats) => `${st.mtimeNs} ${st.ctimeNs} ${st.ino}`;

/** A change this close to the moment we looked could be followed by another within the same clock tick (coarse
 * file-system clocks: a jiffy on ext4, 2 s on FAT), leaving the times unmoved: such a file or folder is not vouched
 * for (the stat cache does not remember it, the record index is written unvouched). */
export const settled = (startedMs: number, st: BigIntStats) =>
  startedMs - Number(st.ctimeNs / 1_000_000n) > 2000 && startedMs - Number(st.mtimeNs / 1_000_000n) > 2000;

/** On disk: one string per path (a few megabytes at thousands of services parse much faster than arrays would). */
interface StatFile {
  /** path -> `<fileId> <sha256>` */
  files: Record<string, string>;
  /** path -> `<folderId>/<name>/<name>...` (no name holds a slash) */
  lists: Record<string, string>;
}

/**
 * Remembers file hashes by (size, mtime ns, ctime ns, inode), persisted between runs,
 * so a 512 MiB rootfs.img that did not change is not read again; and folder listings by (mtime ns, ctime ns, inode),
 * so an unchanged build context costs a stat instead of a listing (a no-op run lists one per service).
 */
export class StatCache {
  private files: Record<string, string> = {};
  private lists: Record<string, string> = {};
  private dirty = false;
  constructor(private readonly file?: string) {
    if (!file) return;
    let saved: unknown;
    try { saved = JSON.parse(readFileSync(file, 'utf8')); } catch { return; /* first run or unreadable: start empty */ }
    if (!isObject(saved)) return;
    if (isObject(saved.files)) {
      this.files = saved.files as StatFile['files'];
      if (isObject(saved.lists)) this.lists = saved.lists as StatFile['lists'];
      return;
    }
    // Written before listings were remembered: path -> [size, mtime, ctime, ino, sha256].
    for (const [path, e] of Object.entries(saved)) if (Array.isArray(e) && e.length === 5) this.files[path] = e.join(' ');
  }

  /** sha256 of `path`, or undefined when it does not exist. `given`: its stat, when the caller has just taken it. */
  async hashFile(path: string, progress?: Progress, given?: BigIntStats): Promise<string | undefined> {
    const startedMs = Date.now();
    // Synchronous: a stat is microseconds, while an async one costs a thread-pool round trip (a no-op run does
    // tens of thousands of these).
    let st = given;
    if (!st) try { st = statSync(path, { bigint: true, throwIfNoEntry: false }); } catch { /* unreadable: treated as absent */ }
    if (!st) return undefined;
    const id = fileId(st);
    const known = this.files[path];
    if (typeof known === 'string' && known.length === id.length + 65 && known.startsWith(id) && known[id.length] === ' ') return known.slice(id.length + 1);
    const digest = await hashFile(path, progress);
    if (settled(startedMs, st)) {
      this.files[path] = `${id} ${digest}`;
      this.dirty = true;
    }
    return digest;
  }

  /** The names in folder `path` (unsorted, as readdir gives them). Throws as readdirSync does when it cannot list. */
  list(path: string): string[] {
    const startedMs = Date.now();
    const st = statSync(path, { bigint: true });
    const id = folderId(st);
    const known = this.lists[path];
    if (typeof known === 'string' && known.startsWith(id) && known[id.length] === '/') {
      const rest = known.slice(id.length + 1);
      return rest ? rest.split('/') : [];
    }
    const names = readdirSync(path);
    if (settled(startedMs, st)) {
      this.lists[path] = `${id}/${names.join('/')}`;
      this.dirty = true;
    }
    return names;
  }

  /** Records a hash we computed while writing the file (saves reading it back). */
  async remember(path: string, digest: string): Promise<void> {
    this.files[path] = `${fileId(statSync(path, { bigint: true }))} ${digest}`;
    this.dirty = true;
  }

  async save(): Promise<void> {
    if (!this.file || !this.dirty) return;
    await writeFileAtomic(this.file, JSON.stringify({ files: this.files, lists: this.lists } satisfies StatFile));
    this.dirty = false;
  }
}

/** A file whose allocated bytes fall this far short of its size is read by its extent map (a data disk). */
const SPARSE_MIN_HOLES = 64 << 20;
const ZEROS = Buffer.alloc(1 << 20);

/**
 * sha256 of a file, streamed. A sparse file (a data disk: 4 GiB, mostly holes) is read only where it
 * holds data; its holes are hashed as zeros from memory, so the identity stays the sha256 of its bytes.
 */
export async function hashFile(path: string, progress?: Progress): Promise<string> {
  const st = await fs.stat(path);
  const extents = st.blocks * 512 + SPARSE_MIN_HOLES < st.size ? await dataExtents(path, st.size) : undefined;
  return extents ? hashSparse(path, st.size, extents, progress) : hashStream(path, st.size, progress);
}

/** sha256 of `path`, read front to back; a file whose length is not the `size` it had before changed while it was read. */
function hashStream(path: string, size: number, progress?: Progress): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let done = 0;
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on('data', (c) => { h.update(c); done += c.length; progress?.(done, size); })
      .on('error', reject)
      .on('end', () => (done === size ? resolve(h.digest('hex')) : reject(changedWhileHashed(path))));
  });
}

async function hashSparse(path: string, size: number, extents: Extents, progress?: Progress): Promise<string> {
  const h = createHash('sha256');
  let pos = 0;
  const zerosTo = (to: number) => { for (; pos < to; pos += Math.min(ZEROS.length, to - pos)) h.update(ZEROS.subarray(0, Math.min(ZEROS.length, to - pos))); };
  for await (const [at, data] of readRanges(path, extents, ZEROS.length)) {
    zerosTo(at);
    h.update(data);
    pos += data.length;
    progress?.(pos, size);
  }
  zerosTo(size);
  progress?.(size, size);
  return h.digest('hex');
}

/**
 * Hash of a folder's contents as a build context: relative paths, exec bits, symlink targets and file hashes,
 * filtered by an ignore file (`.dockerignore` rules) when given.
 */
export async function hashDir(dir: string, cache: StatCache, ignoreFile?: string): Promise<string> {
  let ignored: ((rel: string) => boolean) | undefined;
  // With `!` exceptions, a file inside an ignored folder can still be sent to the builder: look inside.
  let exceptions = false;
  // Listed first: the ignore file is read only when the listing has it (a failed read throws, and a no-op run
  // hashes one folder per service, most without one).
  const top = cache.list(dir);
  if (ignoreFile && top.includes(ignoreFile)) {
    let text: string | undefined;
    try { text = readFileSync(join(dir, ignoreFile), 'utf8'); } catch { /* gone since, or not a file */ }
    if (text !== undefined) {
      const ig = dockerignore({ ignorecase: false }).add(text);
      ignored = (rel) => ig.ignores(rel);
      exceptions = /^\s*!/m.test(text);
    }
  }
  const lines: string[] = [];
  // Synchronous listing and lstat: build contexts are small, and a no-op run hashes one per service.
  const walk = async (abs: string, prefix: string, listed?: string[]) => {
    const names = [...(listed ?? cache.list(abs))].sort();
    for (const name of names) {
      const p = join(abs, name);
      const rel = prefix + name;
      const skip = ignored?.(rel) ?? false;
      const st = lstatSync(p, { bigint: true });
      if (st.isDirectory()) {
        if (skip && !exceptions) continue;
        if (!skip) lines.push(`d ${rel}`);
        await walk(p, `${rel}/`);
      } else if (skip) continue;
      else if (st.isSymbolicLink()) lines.push(`l ${rel} ${readlinkSync(p)}`);
      // The lstat of a regular file is its stat: handed on, so the stat cache need not stat it again.
      else if (st.isFile()) lines.push(`f ${rel} ${st.mode & 0o111n ? 'x' : '-'} ${await cache.hashFile(p, undefined, st)}`);
    }
  };
  await walk(dir, '', top);
  return sha256(lines.join('\n'));
}
