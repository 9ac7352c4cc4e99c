// One run per repo at a time: an exclusive lock file holding the owner's pid; stale locks (dead owner) are taken over.
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from './error.ts';

export interface Lock { release(): Promise<void> }

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/**
 * Takes `file`. While another live process holds it: wait (calling `onWait` once) up to `waitMs`,
 * then fail with a clear error naming the holder.
 */
export async function acquireLock(file: string, opts: { waitMs: number; onWait?: (holder: string) => void }): Promise<Lock> {
  await fs.mkdir(dirname(file), { recursive: true });
  const deadline = Date.now() + opts.waitMs;
  let told = false;
  for (;;) {
    try {
      const h = await fs.open(file, 'wx');
      await h.writeFile(JSON.stringify({ pid: process.pid, since: new Date().toISOString(), argv: process.argv.slice(2, 4) }));
      await h.close();
      return { release: () => fs.rm(file, { force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = await fs.readFile(file, 'utf8').then((t) => JSON.parse(t) as { pid: number; since: string }, () => undefined);
    if (!holder || !alive(holder.pid)) {
      await fs.rm(file, { force: true }); // the previous run died without releasing: take over
      continue;
    }
    const who = `pid ${holder.pid}, since ${holder.since}`;
    if (Date.now() >= deadline) {
      throw new UserError(`another sovereign run is in progress in this repo (${who})`, { code: 'locked', hint: 'wait for it to finish, or pass --wait <seconds> to wait longer' });
    }
    if (!told) { opts.onWait?.(who); told = true; }
    await new Promise((r) => setTimeout(r, 200));
  }
}
