// Test fixture: a system user made for one test and deleted after it (root only: useradd/userdel).
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../lib/exec.ts';

export interface ThrowawayUser {
  name: string;
  uid: number;
  gid: number;
  /** Deletes the user and its own group; userdel also drops any /etc/subuid and /etc/subgid lines it got. */
  remove(): Promise<void>;
}

/** `sov-<tag>-<pid>`: the pid of the test process that made it, so a sweep can tell whose it was. */
export const throwawayName = (tag: string) => `sov-${tag}-${process.pid}`;

/** A system user `throwawayName(tag)` with a group of its own, member of `groups`; no home, no login shell, no subordinate ids. */
export async function throwawayUser(tag: string, o: { groups?: string[] } = {}): Promise<ThrowawayUser> {
  await sweepStale();
  const name = throwawayName(tag);
  await exec('useradd', ['--system', '--user-group', '--no-create-home', '--comment', SWEEP_MARK, '--shell', '/usr/sbin/nologin', ...(o.groups?.length ? ['--groups', o.groups.join(',')] : []), name]);
  const remove = async () => { await exec('userdel', [name], { nothrow: true }); };
  try {
    const [uid, gid] = await Promise.all([exec('id', ['-u', name]), exec('id', ['-g', name])]).then((r) => r.map((x) => Number(x.stdout.trim())));
    return { name, uid, gid, remove };
  } catch (e) {
    await remove();
    throw e;
  }
}

/** The comment (GECOS) field of every user made here: the sweep removes no account it did not make. */
const SWEEP_MARK = 'sovereign test throwaway';

/**
 * Users marked SWEEP_MARK and named `sov-<tag>-<pid>` whose test process is gone (killed before its cleanup ran),
 * then groups of that name whose pid is gone (groupdel refuses one that is still a user's primary group).
 */
async function sweepStale(): Promise<void> {
  const dead = (n: string) => { const pid = /^sov-[a-z]+-(\d+)$/.exec(n)?.[1]; return pid !== undefined && !existsSync(`/proc/${pid}`); };
  const rows = async (file: string) => (await fs.readFile(file, 'utf8').catch(() => '')).split('\n').map((l) => l.split(':'));
  for (const [name, , , , gecos] of await rows('/etc/passwd')) if (gecos === SWEEP_MARK && dead(name)) await exec('userdel', [name], { nothrow: true });
  for (const [name] of await rows('/etc/group')) if (dead(name)) await exec('groupdel', [name], { nothrow: true });
}

/** Gives every path under `dir` (symlinks themselves, not their targets) to `user`. */
export async function chownTree(dir: string, user: { uid: number; gid: number }): Promise<void> {
  await fs.lchown(dir, user.uid, user.gid);
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, user);
    else await fs.lchown(p, user.uid, user.gid);
  }
}

/** Paths under `dir` (relative) whose owner is not `uid`: what something else, e.g. root, made there. */
export async function notOwnedBy(dir: string, uid: number, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(join(dir, rel), { withFileTypes: true })) {
    const p = join(rel, e.name);
    if ((await fs.lstat(join(dir, p))).uid !== uid) out.push(p);
    if (e.isDirectory()) out.push(...await notOwnedBy(dir, uid, p));
  }
  return out;
}
