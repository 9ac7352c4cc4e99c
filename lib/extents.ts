// Where a sparse file's data lies (the kernel's extent map, read with e2fsprogs' filefrag), so readers can skip its holes.
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
