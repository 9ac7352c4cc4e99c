// File-system primitives every writer uses: atomic writes and moves, temp dirs beside their destination.
import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const tmpName = (dest: string) => join(dirname(dest), `.${randomBytes(6).toString('hex')}.tmp`);

/** Write to a temp file beside `dest`, then rename: readers see the old or the new content, never half. */
export async function writeFileAtomic(dest: string, data: string | Buffer, mode?: number): Promise<void> {
  await fs.mkdir(dirname(dest), { recursive: true });
  const tmp = tmpName(dest);
  try {
    await fs.writeFile(tmp, data, { mode });
    await fs.rename(tmp, dest);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/** Copies `src` to `dest` atomically (reflink when the file system can). */
export async function copyFileAtomic(src: string, dest: string): Promise<void> {
  await fs.mkdir(dirname(dest), { recursive: true });
  const tmp = tmpName(dest);
  try {
    await fs.copyFile(src, tmp, fs.constants.COPYFILE_FICLONE);
    await fs.rename(tmp, dest);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

export async function exists(path: string): Promise<boolean> {
  return fs.access(path).then(() => true, () => false);
}

/** Like writeFileAtomic, and durable: the data is on disk before the rename, and the rename before we return.
 * For files a user trusts across crashes (a lock file committed with the repo). */
export async function writeFileDurable(dest: string, data: string | Buffer, mode?: number): Promise<void> {
  await fs.mkdir(dirname(dest), { recursive: true });
  const tmp = tmpName(dest);
  try {
    const fh = await fs.open(tmp, 'w', mode);
    try { await fh.writeFile(data); await fh.sync(); } finally { await fh.close(); }
    await fs.rename(tmp, dest);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  const dir = await fs.open(dirname(dest), 'r');
  try { await dir.sync(); } finally { await dir.close(); }
}
