// Where a sparse file's data lies (the kernel's extent map, read with e2fsprogs' filefrag), so readers can skip its holes;
// and a content identity of a sparse file that never reads them.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { UserError } from './error.ts';
import { exec } from './exec.ts';

/** [start, end) byte ranges holding data, in order, merged, within the file's size. */
export type Extents = Array<[start: number, end: number]>;

/**
 * The data ranges of `path` (Node has no SEEK_DATA; FIEMAP through `filefrag -e` gives the same map).
 * Preallocated (unwritten) extents count as data: they read as zeros, so hashing them is correct too.
 * Undefined when the map cannot be read (no filefrag, a file system without FIEMAP): read everything then.
 */
export async function dataExtents(path: string, size: number): Promise<Extents | undefined> {
  const r = await exec('filefrag', ['-e', path], { nothrow: true, timeoutMs: 60_000 }).catch(() => undefined);
  if (!r || r.code !== 0) return undefined;
  const unit = Number(/blocks of (\d+) bytes/.exec(r.stdout)?.[1]);
  if (!Number.isInteger(unit) || unit <= 0) return undefined;
  const out: Extents = [];
  for (const m of r.stdout.matchAll(/^\s*\d+:\s+(\d+)\.\.\s*(\d+):/gm)) {
    const start = Number(m[1]) * unit;
    const end = Math.min(size, (Number(m[2]) + 1) * unit);
    if (start >= end) continue;
    const last = out.at(-1);
    if (last && start < last[1]) return undefined; // not in order: do not trust the map
    if (last && start === last[1]) last[1] = end;
    else out.push([start, end]);
  }
  return out;
}

/** Granularity of sparseIdentity: ext4's block, so a block the guest zeroed and a hole are alike. */
const ID_BLOCK = 4096;
const ID_CHUNK = 256 * ID_BLOCK;

/**
 * A content identity of a sparse file that costs what its data costs, not its size: the sha256 of
 * `sovereign-sparse-v1`, the size (u64), then for each block holding a non-zero byte, its index (u64)
 * and its bytes. Like a sha256 of the bytes, it depends on the content alone (an all-zero block reads
 * the same whether written or a hole), but holes are never read nor fed to the hash, so a 4 GiB data
 * disk holding 10 MiB costs 10 MiB of reading and hashing. It is not what `sha256sum` prints: use it
 * only where nothing compares it with one (data.img's manifest entry, see tasks/push.ts).
 */
export async function sparseIdentity(path: string, progress?: (done: number, total: number) => void): Promise<string> {
  const size = (await fs.stat(path)).size;
  // Whole blocks: extents of a 4 KiB-block file system are aligned already; a finer map is widened.
  const blocks: Extents = [];
  for (const [start, end] of (await dataExtents(path, size)) ?? [[0, size]]) {
    const from = Math.max(blocks.at(-1)?.[1] ?? 0, start - (start % ID_BLOCK));
    const to = Math.min(size, Math.ceil(end / ID_BLOCK) * ID_BLOCK);
    if (from < to) blocks.push([from, to]);
  }
  const h = createHash('sha256').update('sovereign-sparse-v1\0').update(u64(size));
  const zero = Buffer.alloc(ID_BLOCK);
  for await (const [pos, data] of readRanges(path, blocks, ID_CHUNK)) {
    for (let off = 0; off < data.length; off += ID_BLOCK) {
      const block = data.subarray(off, Math.min(off + ID_BLOCK, data.length));
      if (!block.equals(zero.subarray(0, block.length))) h.update(u64((pos + off) / ID_BLOCK)).update(block);
    }
    progress?.(pos + data.length, size);
  }
  progress?.(size, size);
  return h.digest('hex');
}

/**
 * The bytes of `path` in `ranges` (in order), as [offset, chunk] of at most `chunk` bytes; each chunk's buffer is
 * reused for the next, so use it before asking for more. A short read means the file changed while it was read.
 */
export async function* readRanges(path: string, ranges: Extents, chunk: number): AsyncGenerator<[number, Buffer]> {
  const fh = await fs.open(path);
  try {
    const buf = Buffer.alloc(chunk);
    for (const [start, end] of ranges) {
      for (let pos = start; pos < end;) {
        const len = Math.min(chunk, end - pos);
        const { bytesRead } = await fh.read(buf, 0, len, pos);
        if (bytesRead !== len) throw changedWhileHashed(path);
        yield [pos, buf.subarray(0, len)];
        pos += len;
      }
    }
  } finally {
    await fh.close();
  }
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** A file that shrank while it was read for its hash: something outside sovereign writes it (a failure, not a bug). */
export function changedWhileHashed(path: string): UserError {
  return new UserError(`${path} changed while sovereign hashed it`, {
    hint: 'something else is writing this file (a running VM, an editor, another build): let it finish, then run again',
  });
}
