// One run per repo at a time: an exclusive lock file holding the owner's pid and start; stale locks (dead owner) are taken over.
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from './error.ts';

export interface Lock { release(): Promise<void> }

/** `start`: which process `pid` was (boot id and start time), where the system tells; absent in older locks. */
interface Holder { pid: number; since: string; token: string; start?: string }

/**
 * Boot id and start time (clock ticks after boot, /proc/<pid>/stat field 22) of a process: a pid reused by another
 * process, or a lock from before a reboot or from another container with our pid, does not match. Undefined off Linux.
 */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces and parentheses) start at field 3.
    const ticks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3];
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return ticks ? `${boot}:${ticks}` : undefined;
  } catch {
    return undefined;
  }
}

/** The holder's process still runs: its pid is alive and, when the lock says which process it was, is still that one. */
function alive(h: Holder): boolean {
  try { process.kill(h.pid, 0); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false; }
  if (h.start === undefined) return true;
  const now = processStart(h.pid);
  return now === undefined || now === h.start;
}

/**
 * The lock's holder; undefined when there is none or the file is empty or garbage. Locks are linked into place
 * whole, so a corrupt one was never a live run's: it is stale by definition and taken over.
 */
async function read(file: string): Promise<Holder | undefined> {
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  try {
    const h = JSON.parse(text ?? '') as Partial<Holder> | null;
    return typeof h?.pid === 'number' && typeof h.token === 'string' && (h.start === undefined || typeof h.start === 'string') ? (h as Holder) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes `file`. While another live process holds it: wait (calling `onWait` once) up to `waitMs`,
 * then fail with a clear error naming the holder.
 */
export async function acquireLock(file: string, opts: { waitMs: number; onWait?: (holder: string) => void }): Promise<Lock> {
  await fs.mkdir(dirname(file), { recursive: true });
  const me: Holder = { pid: process.pid, since: new Date().toISOString(), token: randomBytes(8).toString('hex'), start: processStart(process.pid) };
  const deadline = Date.now() + opts.waitMs;
  let told = false;
  for (;;) {
    // Written whole to a private name, then linked into place: the lock never exists half-written,
    // and link() fails when any other run holds it.
    const mine = `${file}.${me.token}`;
    await fs.writeFile(mine, JSON.stringify(me));
    const took = await fs.link(mine, file).then(() => true, (e: NodeJS.ErrnoException) => { if (e.code === 'EEXIST') return false; throw e; });
    await fs.rm(mine, { force: true });
    if (took) return { release: () => release(file, me.token) };
    const holder = await read(file);
    if (!holder || !alive(holder)) {
      await takeOver(file, holder?.token);
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

/**
 * Removes a dead run's lock. One remover at a time (a `.takeover` folder is the mutex), and only if the
 * lock still holds the dead run's token: a live run's fresh lock is never removed.
 */
async function takeOver(file: string, staleToken: string | undefined): Promise<void> {
  const mutex = `${file}.takeover`;
  if (!(await fs.mkdir(mutex).then(() => true, () => false))) {
    // Another run is taking over; a mutex left by a run that died inside this function is cleared after 10 s.
    const st = await fs.stat(mutex).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 10_000) await fs.rm(mutex, { recursive: true, force: true });
    await new Promise((r) => setTimeout(r, 20));
    return;
  }
  try {
    if ((await read(file))?.token === staleToken) await fs.rm(file, { force: true });
  } finally {
    await fs.rm(mutex, { recursive: true, force: true });
  }
}

async function release(file: string, token: string): Promise<void> {
  if ((await read(file))?.token === token) await fs.rm(file, { force: true });
}
