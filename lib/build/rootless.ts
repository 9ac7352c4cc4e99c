// Whether an ordinary user can run `mmdebstrap --mode=unshare`: root only inside a user namespace mapped onto
// the user's subordinate ids. Each missing piece is one UserError naming the fix (exit 4, like any environment gap).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../error.ts';

/** Ids mmdebstrap maps into its namespace: a Debian root uses ids up to 65535 (nobody, nogroup). */
export const SUBID_COUNT = 65_536;
/** Where ranges start when none are taken yet (Debian's useradd starts there too). */
const FIRST_SUBID = 100_000;

export interface HostFiles {
  /** Default /etc (subuid, subgid). */
  etc?: string;
  /** Default /proc/sys (the user-namespace switches). */
  procSys?: string;
  /** Whether newuidmap and newgidmap are installed (the uidmap package). */
  idmap: boolean;
}

/** The first thing that keeps `user` from an unshare-mode mmdebstrap here, or undefined when nothing does. */
export function rootlessProblem(user: { name: string; uid: number }, host: HostFiles): UserError | undefined {
  const etc = host.etc ?? '/etc';
  const sys = host.procSys ?? '/proc/sys';
  const env = (message: string, hint: string) => new UserError(message, { code: 'environment', hint });
  if (!host.idmap) {
    return env('mmdebstrap as an ordinary user needs newuidmap and newgidmap', 'sudo apt-get install uidmap (scripts/setup-host.sh installs it)');
  }
  const lacking = ['subuid', 'subgid'].filter((f) => subIds(readText(join(etc, f)), user) < SUBID_COUNT);
  if (lacking.length) {
    const start = freeStart([readText(join(etc, 'subuid')), readText(join(etc, 'subgid'))]);
    const line = `${user.name}:${start}:${SUBID_COUNT}`;
    // A short line of the user's own comes first: another line after it would not be read.
    const short = lacking.some((f) => subIds(readText(join(etc, f)), user) > 0);
    return env(`mmdebstrap as an ordinary user needs ${SUBID_COUNT} subordinate ids for ${user.name} in ${lacking.map((f) => join(etc, f)).join(' and ')}`,
      short
        ? `make ${user.name}'s first line in /etc/subuid and /etc/subgid ${line} (mmdebstrap reads only the first line naming ${user.name})`
        : `add the line ${line} to /etc/subuid and /etc/subgid (sudo usermod --add-subuids ${start}-${start + SUBID_COUNT - 1} --add-subgids ${start}-${start + SUBID_COUNT - 1} ${user.name}), or run scripts/setup-host.sh as ${user.name}: it adds them through sudo`);
  }
  const knob = (path: string) => readText(join(sys, path)).trim();
  if (knob('kernel/unprivileged_userns_clone') === '0') {
    return env('this kernel forbids ordinary users to create user namespaces (kernel.unprivileged_userns_clone = 0), which mmdebstrap --mode=unshare needs',
      'sudo sysctl -w kernel.unprivileged_userns_clone=1 (scripts/setup-host.sh sets it and keeps it in /etc/sysctl.d)');
  }
  if (knob('user/max_user_namespaces') === '0') {
    return env('user namespaces are switched off (user.max_user_namespaces = 0), which mmdebstrap --mode=unshare needs',
      'sudo sysctl -w user.max_user_namespaces=15000 (scripts/setup-host.sh sets it and keeps it in /etc/sysctl.d)');
  }
  if (knob('kernel/apparmor_restrict_unprivileged_userns') === '1') {
    return env('AppArmor denies ordinary users the capabilities mmdebstrap --mode=unshare needs in its user namespace (kernel.apparmor_restrict_unprivileged_userns = 1)',
      'sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile that lets mmdebstrap use user namespaces)');
  }
  return undefined;
}

/**
 * How many subordinate ids mmdebstrap gets for `user` from a subuid/subgid text (lines name:start:count): it maps only
 * the first line naming the user by name (a line naming the uid, or a later range, is not read).
 */
export function subIds(text: string, user: { name: string }): number {
  const first = text.split('\n').map((l) => l.trim().split(':')).find((f) => f.length === 3 && f[0] === user.name);
  return Number(first?.[2]) || 0;
}

/** The first id after every range in the texts (at least FIRST_SUBID): a range that overlaps no one's. */
export function freeStart(texts: string[]): number {
  let end = FIRST_SUBID;
  for (const l of texts.join('\n').split('\n')) {
    const f = l.trim().split(':');
    if (f.length === 3 && Number.isFinite(Number(f[1]) + Number(f[2]))) end = Math.max(end, Number(f[1]) + Number(f[2]));
  }
  return end;
}

function readText(path: string): string {
  try { return readFileSync(path, 'utf8'); } catch { return ''; }
}
