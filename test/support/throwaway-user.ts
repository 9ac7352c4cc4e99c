// Test fixture: a system user made for one test and deleted after it (root only: useradd/userdel).
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../lib/exec.ts';
import { freeStart, SUBID_COUNT } from '../../lib/build/rootless.ts';

export interface ThrowawayUser {
  name: string;
  uid: number;
  gid: number;
  /** Deletes the user and its own group; userdel also drops its /etc/subuid and /etc/subgid lines. */
  remove(): Promise<void>;
}

/**
 * `sov-<tag>-<pid>` with a group of its own, member of `groups`; `subIds`: 65536 subordinate uids and gids in a
 * range after every range already taken (what Debian's useradd gives an ordinary, non-system user).
 */
export async function throwawayUser(tag: string, o: { groups?: string[]; subIds?: boolean } = {}): Promise<ThrowawayUser> {
  const name = `sov-${tag}-${process.pid}`;
  await exec('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', ...(o.groups?.length ? ['--groups', o.groups.join(',')] : []), name]);
  const remove = async () => { await exec('userdel', [name], { nothrow: true }); };
  try {
    const [uid, gid] = await Promise.all([exec('id', ['-u', name]), exec('id', ['-g', name])]).then((r) => r.map((x) => Number(x.stdout.trim())));
    if (o.subIds) {
      const start = freeStart(await Promise.all(['subuid', 'subgid'].map((f) => fs.readFile(join('/etc', f), 'utf8').catch(() => ''))));
      const range = `${start}-${start + SUBID_COUNT - 1}`;
      await exec('usermod', ['--add-subuids', range, '--add-subgids', range, name]);
    }
    return { name, uid, gid, remove };
  } catch (e) {
    await remove();
    throw e;
  }
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
