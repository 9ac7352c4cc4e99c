// sovereign.lock.json: the image id each pinned upstream image had when first fetched, committed beside the config.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../error.ts';
import { writeFileAtomic } from '../fsutil.ts';

export const LOCK_FILE = 'sovereign.lock.json';

/** One pinned image of one service: the reference it was fetched under, and its image id per platform. */
export interface LockEntry { image: string; ids: Record<string, string> }
interface LockFile { version: 1; upstream: Record<string, LockEntry> }

// Every read-modify-write of the file in this process goes through this chain (forge and vault fetch in parallel);
// other processes are kept out by the repo lock every run holds.
let chain: Promise<unknown> = Promise.resolve();

async function read(root: string): Promise<LockFile> {
  const path = join(root, LOCK_FILE);
  const text = await fs.readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return undefined; throw e; });
  if (text === undefined) return { version: 1, upstream: {} };
  let data: unknown;
  try { data = JSON.parse(text); } catch (e) { data = undefined; }
  const lock = data as LockFile | undefined;
  if (!lock || lock.version !== 1 || typeof lock.upstream !== 'object' || lock.upstream === null) {
    throw new UserError(`${LOCK_FILE} is not a valid lock file`, { code: 'config', hint: `restore it from git (git checkout ${LOCK_FILE}); delete it only to trust whatever upstream serves next` });
  }
  return lock;
}

/** The recorded id of `key` (`<service>.<ARG>`) for `image` on `platform`, or undefined when none is recorded (a new pin). */
export async function lockedId(root: string, key: string, image: string, platform: string): Promise<string | undefined> {
  const e = (await read(root)).upstream[key];
  return e && e.image === image ? e.ids?.[platform] : undefined;
}

/** Records `id` for `key`; a changed pin replaces the old entry, as a package lock does. Durable (fsync) before it resolves. */
export function recordId(root: string, key: string, image: string, platform: string, id: string): Promise<void> {
  const next = chain.then(async () => {
    const lock = await read(root);
    const old = lock.upstream[key];
    lock.upstream[key] = { image, ids: { ...(old && old.image === image ? old.ids : {}), [platform]: id } };
    const sorted = Object.fromEntries(Object.keys(lock.upstream).sort().map((k) => [k, lock.upstream[k]]));
    await writeFileAtomic(join(root, LOCK_FILE), `${JSON.stringify({ version: 1, upstream: sorted }, null, 2)}\n`);
  });
  chain = next.catch(() => {});
  return next;
}
