// What an image build leaves behind that records the build rather than the recipe: logs, caches, machine
// identity, random seeds, keys generated at install time, dates. The rootfs step drops or fixes these while
// staging — for every service, never by hand in a Dockerfile — so two clean builds give the same bytes and
// no private key made at build time ships inside a cacheable, shareable artifact. Keys a guest needs are made
// at first boot on its data disk (vm/common/init-lib.sh `tls_cert`).
import { promises as fs } from 'node:fs';
import { join, posix } from 'node:path';

/** Exact paths (relative to the image root) dropped whatever their type. */
const PATHS = new Set([
  // ldconfig's cache of library file stats: rebuilt by ldconfig, holds build-time inode data.
  'var/cache/ldconfig/aux-cache',
  // Machine identity and entropy belong to one machine, not to every VM made from this image.
  'etc/machine-id', 'var/lib/dbus/machine-id', 'var/lib/systemd/random-seed', 'var/lib/urandom/random-seed',
  // ssl-cert's "snakeoil" pair: a private key generated when the package was installed.
  'etc/ssl/private/ssl-cert-snakeoil.key', 'etc/ssl/certs/ssl-cert-snakeoil.pem',
]);

/** Regular files under these folders are dropped (the folders stay): logs of the build, package lists and archives. */
const FILES_UNDER = ['var/log/', 'var/lib/apt/lists/', 'var/cache/apt/archives/'];

/** Paths dropped by pattern: ssh host keys (made by openssh-server's install), apt's binary caches, Python byte code. */
const PATTERNS = [/^etc\/ssh\/ssh_host_[^/]*_key(\.pub)?$/, /^var\/cache\/apt\/[^/]*\.bin$/, /(^|\/)__pycache__(\/|$)/];

/**
 * True when `path` (e.g. `var/log/dpkg.log`) is build state the rootfs must not contain. `isFile` says whether
 * the entry is a regular file (folders under FILES_UNDER are kept so packages find them).
 */
export function isBuildState(path: string, isFile: boolean): boolean {
  if (PATHS.has(path) || PATTERNS.some((p) => p.test(path))) return true;
  return isFile && FILES_UNDER.some((d) => path.startsWith(d));
}

/** A symlink whose target is dropped build state (e.g. the snakeoil cert's hash link in /etc/ssl/certs). */
export function linksToBuildState(path: string, target: string): boolean {
  const resolved = target.startsWith('/') ? posix.normalize(target).slice(1) : posix.join(posix.dirname(path), target);
  return isBuildState(resolved, true);
}

/** Files rewritten in place: the "last password change" day of every account is the build's date. */
const SHADOW = ['etc/shadow', 'etc/shadow-'];

/**
 * Fixes what records the build date inside files; `epoch` (seconds) is the rootfs' fixed time. `resolveIn` gives a
 * path as the guest sees it, inside the stage: an image's /etc/shadow (or /etc) may link to a host file, which a
 * plain read and write would follow and rewrite.
 */
export async function normaliseStaged(root: string, epoch: number, resolveIn: (root: string, rel: string) => Promise<string>): Promise<void> {
  const day = String(Math.floor(epoch / 86_400));
  for (const rel of SHADOW) {
    const file = join(root, await resolveIn(root, rel));
    if (!(await fs.lstat(file).catch(() => undefined))?.isFile()) continue;
    const text = await fs.readFile(file, 'utf8');
    // name:password:lastchg:... — only a set lastchg changes (empty means "aging off", 0 "must change").
    const fixed = text.split('\n').map((line) => {
      const f = line.split(':');
      if (f.length < 3 || !/^[1-9]\d*$/.test(f[2])) return line;
      f[2] = day;
      return f.join(':');
    }).join('\n');
    if (fixed !== text) await fs.writeFile(file, fixed);
  }
}
