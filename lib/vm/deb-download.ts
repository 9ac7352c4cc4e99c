// One Debian package fetched with no other local user near it: a private folder (as root, apt's sandbox user is
// the only other writer of the download folder; an ordinary user's apt downloads as that user), and the .deb
// checked against apt's index before anything reads it.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../error.ts';
import { exec } from '../exec.ts';
import { hashFile } from '../hash.ts';

/**
 * Downloads `pkg` into `work` (a folder the caller made private, e.g. with mkdtemp) and returns the path of the
 * checked .deb, owned by us and out of reach of every other user.
 */
export async function downloadDeb(pkg: string, work: string, signal?: AbortSignal, aptOptions: string[] = []): Promise<string> {
  const dl = join(work, 'download');
  await fs.mkdir(dl, { mode: 0o700 });
  // apt drops privileges to _apt for downloads: let it (and only it) write here, else it downloads unsandboxed.
  const apt = process.getuid?.() === 0 ? await systemUser('_apt') : undefined;
  if (apt) await fs.chown(dl, apt.uid, apt.gid);
  await exec('apt-get', [...aptOptions, 'download', '-q', pkg], { cwd: dl, signal }).catch((e) => {
    if (e instanceof UserError) throw new UserError(`apt-get download ${pkg} failed`, { code: 'environment', details: e.details, hint: 'is the package name right for the device\'s architecture? (`{arch}` in kernel.deb becomes amd64 or arm64)' });
    throw e;
  });
  const debs = (await fs.readdir(dl)).filter((n) => n.endsWith('.deb'));
  if (debs.length !== 1) throw new UserError(`apt-get download ${pkg} produced no .deb`, { code: 'environment' });
  const deb = join(work, 'package.deb');
  await fs.rename(join(dl, debs[0]), deb); // into our private folder: from here on only we can reach it
  const st = await fs.lstat(deb);
  if (!st.isFile()) throw new UserError(`apt-get download ${pkg} left ${debs[0]}, which is not a regular file`, { code: 'environment' });
  if (apt) await fs.chown(deb, 0, 0);
  await fs.chmod(deb, 0o600);
  const sum = await hashFile(deb);
  const known = await indexSums(pkg, signal, aptOptions);
  if (!known.includes(sum)) {
    throw new UserError(`the downloaded ${debs[0]} does not match apt's index (sha256 ${sum})`, {
      code: 'environment', hint: 'run `apt-get update` and try again; if it persists, the mirror or the download was tampered with',
    });
  }
  return deb;
}

/** The SHA256 of every version of `pkg` that apt's (signed) index knows. */
async function indexSums(pkg: string, signal?: AbortSignal, aptOptions: string[] = []): Promise<string[]> {
  const { stdout } = await exec('apt-cache', [...aptOptions, 'show', pkg], { signal, nothrow: true });
  return [...stdout.matchAll(/^SHA256:\s*([0-9a-f]{64})\s*$/gm)].map((m) => m[1]);
}

export async function systemUser(name: string): Promise<{ uid: number; gid: number } | undefined> {
  const passwd = await fs.readFile('/etc/passwd', 'utf8').catch(() => '');
  const f = passwd.split('\n').map((l) => l.split(':')).find((p) => p[0] === name);
  return f ? { uid: Number(f[2]), gid: Number(f[3]) } : undefined;
}
