// What really changed between two exported images (docker export tars): the floor any delta of their rootfs can reach.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../lib/exec.ts';

export interface ContentChange { bytes: number; files: number; largest: Array<[path: string, bytes: number]> }

/** Regular files of `tarB` that are new or differ from `tarA`, with their sizes (both are unpacked under `work`). */
export async function changedContent(tarA: string, tarB: string, work: string): Promise<ContentChange> {
  const [a, b] = await Promise.all([files(tarA, join(work, 'diff-a')), files(tarB, join(work, 'diff-b'))]);
  const changed = [...b].filter(([path, f]) => a.get(path)?.sha256 !== f.sha256).map(([path, f]) => [path, f.size] as [string, number]);
  changed.sort((x, y) => y[1] - x[1]);
  return { bytes: changed.reduce((n, [, s]) => n + s, 0), files: changed.length, largest: changed.slice(0, 8) };
}

/** Size and sha256 of every regular file in an image tar (unpacked to `dir`, then removed). */
async function files(tar: string, dir: string): Promise<Map<string, { size: number; sha256: string }>> {
  await fs.mkdir(dir, { recursive: true });
  try {
    await exec('tar', ['-xf', tar, '-C', dir, '--exclude=dev/*', '--no-same-owner']);
    const sizes = (await exec('find', ['.', '-type', 'f', '-printf', '%s %P\\n'], { cwd: dir })).stdout;
    // Files sha256sum cannot read (none expected) hash as '?': they count as changed.
    const sums = (await exec('sh', ['-c', 'find . -type f -printf "%P\\0" | xargs -0r sha256sum --', 'sh'], { cwd: dir, nothrow: true })).stdout;
    const sha = new Map([...sums.matchAll(/^([0-9a-f]{64}) {2}(.*)$/gm)].map((m) => [m[2], m[1]]));
    return new Map([...sizes.matchAll(/^(\d+) (.*)$/gm)].map((m) => [m[2], { size: Number(m[1]), sha256: sha.get(m[2]) ?? '?' }]));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
