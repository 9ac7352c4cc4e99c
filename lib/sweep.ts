// Leftovers of a killed run, removed at the start of the next one (under the repo lock, so none of them is in use).
import { promises as fs, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fsyncPath, TMP_SUFFIX, writeFileAtomic } from './fsutil.ts';
import { envWriteTarget } from './secrets.ts';
import { LOCK_FILE } from './upstream/lock.ts';

/** System temp folders older than this whose owner cannot be told (no pid in the name) are taken for debris. */
const STALE_MS = 24 * 3600_000;

/**
 * Written by a run that ended with every task done (nothing of it in flight, so no temp file of its own left), and
 * removed durably by the next locked run before it writes anything: while it exists, the outputs, records and blobs
 * hold no leftovers, and listing them (one folder per service and blob prefix, ~11,000 records at 5,000 services)
 * is skipped. A run that is killed, fails or is interrupted leaves none, so the run after it lists everything.
 */
const cleanMarker = (root: string) => join(root, '.sovereign', 'state', 'clean-exit');

export async function markClean(root: string): Promise<void> {
  await writeFileAtomic(cleanMarker(root), '');
}

/**
 * Every lock holder that may write into the outputs or the store calls this first: whether the marker was there.
 * Its removal is on disk before the caller can leave a temp file that a later run would then not look for.
 */
export async function unmarkClean(root: string): Promise<boolean> {
  const marker = cleanMarker(root);
  if (!(await fs.rm(marker).then(() => true, () => false))) return false;
  await fsyncPath(dirname(marker));
  return true;
}

/** Under the repo lock: removes the leftovers of a killed run (all of them unless the last run left the clean marker). */
export async function sweep(root: string, tmpRoot: string, cacheDir: string): Promise<void> {
  await fs.rm(tmpRoot, { recursive: true, force: true });
  const sov = join(root, '.sovereign');
  const clean = await unmarkClean(root);
  // Temp files beside their destination (state; outputs, records, blobs). The repo root holds the user's files too
  // (`cache export cache.tgz`, `--summary out.json` write their temps there, and export may be running now): only the
  // temps of what a run writes there under this lock, .env and the upstream lock file.
  for (const name of ['.env', LOCK_FILE]) await sweepTemps(root, `.${name}.`);
  // A symlinked .env is written beside its target (also one not made yet), in a folder that may hold other files:
  // only its own temps.
  const env = await envWriteTarget(join(root, '.env')).catch(() => undefined);
  if (env && dirname(env) !== root) await sweepTemps(dirname(env), `.${basename(env)}.`);
  await sweepTemps(join(sov, 'state'));
  if (!clean) {
    // The record index (cache root), the records, the delta-push block indexes.
    for (const dir of [cacheDir, join(cacheDir, 'records'), join(sov, 'blocks')]) await sweepTemps(dir);
    for (const parent of [join(sov, 'out'), join(cacheDir, 'blobs')]) {
      for (const sub of list(parent)) await sweepTemps(join(parent, sub));
    }
  }
  // Upload staging (a whole gzip copy of a blob), import and export staging.
  await fs.rm(join(cacheDir, 'tmp'), { recursive: true, force: true });
  await sweepSystemTemp();
}

/** The temp names of older versions (`.<random>.tmp`). */
const LEGACY_TEMP = /^\.[0-9a-f]{12}\.tmp$/;

async function sweepTemps(dir: string, prefix = '.'): Promise<void> {
  for (const name of list(dir)) {
    if ((name.startsWith(prefix) && name.endsWith(TMP_SUFFIX)) || LEGACY_TEMP.test(name)) await fs.rm(join(dir, name), { force: true });
  }
}

/**
 * sovereign-kernel-<pid>-* of dead processes; those without a pid once a day old: sov-sparse-* (a gzip of a data
 * disk), sov-delta-* (a push's new bytes), sov-ssh-* (connection sockets), sovereign-build-*. Only our own.
 */
async function sweepSystemTemp(): Promise<void> {
  const dir = tmpdir();
  for (const name of list(dir)) {
    const pid = /^sovereign-kernel-(\d+)-/.exec(name)?.[1];
    const path = join(dir, name);
    if (pid === undefined && !/^(sov-(sparse|ssh|delta)|sovereign-build)-/.test(name)) continue;
    const st = await fs.lstat(path).catch(() => undefined);
    if (!st?.isDirectory() || st.uid !== process.getuid?.()) continue;
    const dead = pid !== undefined ? !alive(Number(pid)) : Date.now() - st.mtimeMs > STALE_MS;
    if (dead) await fs.rm(path, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/**
 * Synchronous: a listing is microseconds, an async one a thread-pool round trip, and a run lists one folder per
 * service and blob prefix (5,000 services: 5,000 awaited round trips before any task starts).
 */
function list(dir: string): string[] {
  try { return readdirSync(dir); } catch { return []; }
}
