// Sparse files on the wire: a data disk travels as a compressed sparse tar (its data, not its holes).
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { exec } from '../exec.ts';

export interface SparseBundle {
  /** Local .tar.gz holding one member named as asked. */
  path: string;
  size: number;
  cleanup(): Promise<void>;
}

/**
 * Packs `local` as a gzip'd GNU sparse tar whose single member is called `name`, so the device can
 * unpack it straight to its temp name: `tar -xzf - -C <dir>`. GNU tar finds the holes with
 * SEEK_HOLE, and gzip squeezes zero blocks mkfs wrote, so a fresh 4 GiB disk is a few MB.
 */
export async function sparseBundle(local: string, name: string, signal?: AbortSignal): Promise<SparseBundle> {
  const dir = await fs.mkdtemp(join(tmpdir(), 'sov-sparse-'));
  const cleanup = () => fs.rm(dir, { recursive: true, force: true });
  const path = join(dir, 'bundle.tar.gz');
  const rename = `s|.*|${name.replace(/[|&\\]/g, '\\$&')}|`;
  try {
    await exec('tar', ['-cSzf', path, '--transform', rename, '-C', dirname(local), basename(local)], { signal });
    return { path, size: (await fs.stat(path)).size, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
