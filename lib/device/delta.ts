// Delta push, host side: block indexes of pushed files, the recipe of a new file from the device's old one, and the push itself.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { UserError } from '../error.ts';
import { tail } from '../exec.ts';
import { writeFileAtomic } from '../fsutil.ts';
import { assembleScript, BLOCK, DELTA_EXIT } from './delta-script.ts';
import type { DeviceSession } from './device.ts';
import { tempGlob, tempName } from './session.ts';
import { shQuote as q } from './shell.ts';
import type { UploadOptions } from './transport.ts';

/** Bytes kept per block in an index: a truncated sha256 (a collision only costs a full push: the device checks the whole file's sha256). */
const HASH = 16;
const CHUNK = 256 * BLOCK;
/** Indexes kept (2 MiB each for a 512 MiB image): enough for the versions devices may still hold. */
const KEEP_INDEXES = 16;
/** Assembling and hashing 512 MiB on a phone takes a while. */
const ASSEMBLE_TIMEOUT_MS = 10 * 60_000;
const ZERO = Buffer.alloc(BLOCK);

export interface FileId { sha256: string; size: number }

export interface DeltaPushOptions extends Pick<UploadOptions, 'signal' | 'progress'> {
  /** Repo root: block indexes live in `.sovereign/blocks/`. */
  root: string;
  local: string;
  remote: string;
  want: FileId;
  /** What the device's manifest says `remote` holds. */
  have?: FileId;
}

/** Bytes sent, and how (delta or full, and why full) in words for the log and the run summary. */
export interface PushOutcome { bytes: number; note: string }

const short = (sha: string) => sha.slice(0, 12);
const indexPath = (root: string, sha: string) => join(root, '.sovereign', 'blocks', `${sha}.idx`);

/**
 * Pushes `local` to `remote`: only the blocks the device's old file lacks, plus a recipe, when the
 * host kept a block index of that old file; otherwise (or when the old file turns out not to be what
 * its manifest says) in full, with the reason in the note. Either way the new file's index is kept.
 */
export async function pushDelta(session: DeviceSession, o: DeltaPushOptions): Promise<PushOutcome> {
  const old = o.have ? await loadIndex(o.root, o.have) : undefined;
  let note = await deltaBasis(o.root, o.have);
  if (old) {
    const r = await tryDelta(session, o, old);
    if (typeof r !== 'string') return r;
    note = `full push: ${r}`;
  }
  const { bytes } = await session.push(o.local, o.remote, o);
  await saveIndex(o.root, o.want.sha256, (await scan(o.local)).index);
  return { bytes, note };
}

/** Where the device's old file is, so a plan can look: whether it is there (always) and what it holds (with --verify). */
export interface DeltaProbe { session: DeviceSession; remote: string; verify?: boolean }

/** Why the device's old file cannot be built on (the same words whether the plan or the push finds out). */
const unusable = {
  missing: (what: string) => `${what} is missing on the device`,
  size: (what: string) => `${what} on the device is not the size its manifest records`,
  content: (what: string, how: string) => `${what} on the device is not what its manifest records (${how})`,
};

/** How the next push of a changed file will go, in words (for check reasons, so --dry-run shows it). */
export async function deltaBasis(root: string, have: FileId | undefined, probe?: DeltaProbe): Promise<string> {
  if (!have) return 'full push: nothing on the device to build on';
  if (!(await loadIndex(root, have))) return `full push: no block index of the device's ${short(have.sha256)} on this machine`;
  if (probe) {
    const what = posix.basename(probe.remote);
    if (!(await probe.session.exists(probe.remote))) return `full push: ${unusable.missing(what)}`;
    if (probe.verify && (await probe.session.sha256(probe.remote)) !== have.sha256) return `full push: ${unusable.content(what, '--verify')}`;
  }
  return `delta push against the device's ${short(have.sha256)}`;
}

/** A PushOutcome, or why a delta was not possible (the caller then pushes in full). */
async function tryDelta(session: DeviceSession, o: DeltaPushOptions, old: Buffer): Promise<PushOutcome | string> {
  const work = await fs.mkdtemp(join(tmpdir(), 'sov-delta-'));
  const literals = tempName(o.remote);
  const tmp = tempName(o.remote);
  try {
    const plan = await scan(o.local, old, join(work, 'literals'));
    // Temp files of earlier, interrupted pushes of this file are debris: clear them first.
    await session.run(`mkdir -p -m 700 ${q(posix.dirname(o.remote))} && rm -f ${tempGlob(o.remote)}`, { signal: o.signal });
    if (plan.literalBytes > 0) await session.transport.upload(join(work, 'literals'), literals, { signal: o.signal, progress: o.progress });
    const { mode } = await fs.stat(o.local);
    const script = assembleScript({ old: o.remote, oldSize: o.have!.size, literals, tmp, target: o.remote, size: o.want.size, sha256: o.want.sha256, mode });
    const r = await session.run(script, { input: plan.recipe, nothrow: true, timeoutMs: ASSEMBLE_TIMEOUT_MS, signal: o.signal });
    const what = posix.basename(o.remote);
    if (r.code === DELTA_EXIT.oldMissing) return unusable.missing(what);
    if (r.code === DELTA_EXIT.oldSize) return unusable.size(what);
    if (r.code === DELTA_EXIT.mismatch) return unusable.content(what, 'the assembled file did not verify');
    if (r.code !== 0) throw new UserError(`assembling ${what} on ${session.transport.label} failed (exit ${r.code})`, { details: tail(r.stderr || r.stdout) });
    await saveIndex(o.root, o.want.sha256, plan.index);
    const bytes = plan.literalBytes + Buffer.byteLength(plan.recipe);
    o.progress?.(bytes, bytes);
    return { bytes, note: `delta push: ${bytes} of ${o.want.size} bytes sent (${plan.runs} runs against the device's ${short(o.have!.sha256)})` };
  } catch (e) {
    await session.run(`rm -f ${q(literals)} ${q(tmp)}`, { nothrow: true, timeoutMs: 5000 }).catch(() => undefined);
    throw e;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

interface Scan {
  /** HASH bytes per whole block of the file: what the next delta against this file needs. */
  index: Buffer;
  /** One line per run: `o|l SKIP SEEK COUNT` (see assembleScript). */
  recipe: string;
  runs: number;
  literalBytes: number;
}

/**
 * Hashes every block of `path`. Given `old` (an index) and `literalsPath`, also plans the new file:
 * each non-zero block comes from the old file at any offset where it occurs (preferring the block
 * after the previous match, so moved files stay one run), else from the literals, which are written
 * to `literalsPath` once per distinct block. Whole ext4 blocks never straddle 4 KiB boundaries, so
 * block-aligned matching finds what a byte-rolling (zsync-style) search would in a disk image.
 */
async function scan(path: string, old?: Buffer, literalsPath?: string): Promise<Scan> {
  const fh = await fs.open(path);
  const out = literalsPath ? await fs.open(literalsPath, 'w') : undefined;
  try {
    const { size } = await fh.stat();
    const index = Buffer.alloc(Math.floor(size / BLOCK) * HASH);
    const oldCount = old ? old.length / HASH : 0;
    const oldKey = (j: number) => old!.toString('latin1', j * HASH, (j + 1) * HASH);
    const oldAt = new Map<string, number>();
    for (let j = oldCount - 1; j >= 0; j--) oldAt.set(oldKey(j), j);
    const literalAt = new Map<string, number>();
    const lines: string[] = [];
    let run: { k: string; s: number; d: number; n: number } | undefined;
    const emit = (k: 'o' | 'l', s: number, d: number) => {
      if (run && run.k === k && run.s + run.n === s && run.d + run.n === d) return void run.n++;
      if (run) lines.push(`${run.k} ${run.s} ${run.d} ${run.n}`);
      run = { k, s, d, n: 1 };
    };
    let literalBlocks = 0;
    let literalBytes = 0;
    let lastOld = -2;
    const buf = Buffer.alloc(CHUNK);
    for (let pos = 0; pos < size; pos += CHUNK) {
      const len = await readFull(fh, buf, Math.min(CHUNK, size - pos), pos);
      const pending: Buffer[] = [];
      for (let off = 0; off < len; off += BLOCK) {
        const i = (pos + off) / BLOCK;
        const block = buf.subarray(off, Math.min(off + BLOCK, len));
        const whole = block.length === BLOCK;
        const digest = whole ? createHash('sha256').update(block).digest().subarray(0, HASH) : undefined;
        if (digest) digest.copy(index, i * HASH);
        if (!out) continue;
        if (block.equals(ZERO.subarray(0, block.length))) { // a hole on the device: nothing to send or copy
          if (lastOld >= 0) lastOld++;
          continue;
        }
        const key = digest?.toString('latin1');
        if (key !== undefined) {
          const j = lastOld + 1 < oldCount && oldKey(lastOld + 1) === key ? lastOld + 1 : oldAt.get(key);
          lastOld = j ?? -2;
          if (j !== undefined) { emit('o', j, i); continue; }
          const seen = literalAt.get(key);
          if (seen !== undefined) { emit('l', seen, i); continue; }
          literalAt.set(key, literalBlocks);
        }
        pending.push(Buffer.from(block));
        emit('l', literalBlocks++, i);
        literalBytes += block.length;
      }
      if (out && pending.length) await out.write(Buffer.concat(pending));
    }
    if (run) lines.push(`${run.k} ${run.s} ${run.d} ${run.n}`);
    return { index, recipe: lines.length ? `${lines.join('\n')}\n` : '', runs: lines.length, literalBytes };
  } finally {
    await fh.close();
    await out?.close();
  }
}

async function readFull(fh: fs.FileHandle, buf: Buffer, len: number, pos: number): Promise<number> {
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/** The kept index of a file, when there is one and it fits the file's size. */
async function loadIndex(root: string, id: FileId): Promise<Buffer | undefined> {
  const idx = await fs.readFile(indexPath(root, id.sha256)).catch(() => undefined);
  return idx && idx.length === Math.floor(id.size / BLOCK) * HASH ? idx : undefined;
}

/** Keeps the index of what the device now holds; the oldest beyond KEEP_INDEXES are dropped. */
async function saveIndex(root: string, sha: string, index: Buffer): Promise<void> {
  const path = indexPath(root, sha);
  await writeFileAtomic(path, index);
  const dir = dirname(path);
  const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.idx'));
  if (names.length <= KEEP_INDEXES) return;
  const aged = await Promise.all(names.map(async (n) => ({ n, t: (await fs.stat(join(dir, n)).catch(() => undefined))?.mtimeMs ?? 0 })));
  aged.sort((a, b) => b.t - a.t);
  await Promise.all(aged.slice(KEEP_INDEXES).map(({ n }) => fs.rm(join(dir, n), { force: true })));
}
