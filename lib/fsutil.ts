// File-system primitives every writer uses: durable atomic writes and moves, recognisable temp names beside their destination.
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Every temp file sovereign makes ends with this: git ignores it, and a run sweeps leftovers (lib/sweep.ts). */
export const TMP_SUFFIX = '.sovereign-tmp';

export const tmpName = (dest: string) => join(dirname(dest), `.${basename(dest)}.${randomBytes(6).toString('hex')}${TMP_SUFFIX}`);

/** fsync of a file or folder: its bytes (or names) survive a power cut once this resolves. */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await fs.open(path, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

/**
 * The one trusted rename: the file's bytes are on disk before it gets its name, and the name is on disk before
 * anything (a record, the stat cache, a manifest) vouches for it.
 */
export async function renameDurable(tmp: string, dest: string): Promise<void> {
  await fsyncPath(tmp);
  await fs.rename(tmp, dest);
  await fsyncPath(dirname(dest));
}

/** Write to a temp file beside `dest`, fsync, rename, fsync the folder: readers (and a reboot) see old or new, never half. */
export async function writeFileAtomic(dest: string, data: string | Buffer, mode?: number): Promise<void> {
  await fs.mkdir(dirname(dest), { recursive: true });
  await atomically(dest, (tmp) => fs.writeFile(tmp, data, { mode }));
}

/** Copies `src` to `dest` atomically and durably (reflink when the file system can). */
export async function copyFileAtomic(src: string, dest: string): Promise<void> {
  await fs.mkdir(dirname(dest), { recursive: true });
  await atomically(dest, (tmp) => fs.copyFile(src, tmp, fs.constants.COPYFILE_FICLONE));
}

/** `make` fills a temp file beside `dest`, which then becomes `dest` by renameDurable; the temp is removed on failure. */
export async function atomically(dest: string, make: (tmp: string) => Promise<unknown>): Promise<void> {
  const tmp = tmpName(dest);
  try {
    await make(tmp);
    await renameDurable(tmp, dest);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

export async function exists(path: string): Promise<boolean> {
  return fs.access(path).then(() => true, () => false);
}

/** Room kept free on a file system when what may be written there is capped by its free space. */
const FREE_MARGIN = 256 * 1024 * 1024;
/** Bytes that may be written in `dir`'s file system: its free space less a margin (a cap for what outsiders claim). */
export async function roomFor(dir: string): Promise<number> {
  const s = await fs.statfs(dir);
  return s.bavail * s.bsize - FREE_MARGIN;
}
