// A private apt state for one architecture: package lists and downloads in a folder of ours, so a kernel for an
// arm64 phone is fetched on an x86 host without `dpkg --add-architecture` or touching the host's apt state.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { type Arch, archSpec } from '../arch.ts';
import { UserError } from '../error.ts';
import { exec } from '../exec.ts';
import { systemUser } from './deb-download.ts';

/** `-o` options that point apt-get/apt-cache at `dir` for `arch`; the host's sources and proxy settings still apply. */
export function aptOptions(dir: string, arch: Arch): string[] {
  const deb = archSpec(arch).deb;
  const opts = {
    'APT::Architecture': deb,
    'APT::Architectures': deb,
    'Dir::State::Lists': join(dir, 'lists'),
    'Dir::State::status': join(dir, 'status'),
    'Dir::Cache': join(dir, 'cache'),
  };
  return Object.entries(opts).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
}

/** Makes `dir` a private apt state for `arch` and fetches its package lists (~20 MB, a few seconds); resolves the `-o` options. */
export async function privateApt(dir: string, arch: Arch, signal?: AbortSignal): Promise<string[]> {
  // apt downloads as its sandbox user _apt: it (and only it) may write the partial folders; the rest stays ours.
  const sandbox = process.getuid?.() === 0 ? await systemUser('_apt') : undefined;
  for (const d of ['lists/partial', 'cache/archives/partial']) {
    await fs.mkdir(join(dir, d), { recursive: true, mode: 0o755 });
    if (sandbox) await fs.chown(join(dir, d), sandbox.uid, sandbox.gid);
  }
  await fs.writeFile(join(dir, 'status'), '');
  const opts = aptOptions(dir, arch);
  const r = await exec('apt-get', [...opts, '-q', 'update'], { signal, nothrow: true });
  // apt-get update exits 0 even when a source failed: a list it could not fetch shows as W:/E: lines.
  const problems = (r.stdout + r.stderr).split('\n').filter((l) => /^(E|Err):/.test(l));
  if (r.code !== 0 || problems.length) {
    throw new UserError(`apt-get update for ${archSpec(arch).deb} packages failed`, {
      code: 'environment', details: problems.length ? problems : r.stderr.trim().split('\n').slice(-5),
      hint: `the host's apt sources must reach a Debian mirror that carries ${archSpec(arch).deb} (a source limited to other architectures is skipped)`,
    });
  }
  return opts;
}
