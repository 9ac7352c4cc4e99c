// Manual benchmark: the same bookworm minbase root four ways, to choose root's mode with numbers.
// mmdebstrap --mode=root as root (the baseline), mmdebstrap --mode=unshare as root and as an ordinary user (a
// throwaway one), debootstrap as root (the fallback without mmdebstrap). Only the bootstrap is timed, not the import. Two rounds, the second in reverse order (a
// mirror cache warmed by the first run, or load from others, hits each the same); prints each mean and its ratio
// to the baseline's.
// Usage (as root, reaches a Debian mirror; makes and removes a system user): node --import tsx bench/base-modes.ts
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BASE_EPOCH, variantArgs } from '../lib/build/base.ts';
import { exec } from '../lib/exec.ts';
import { hashFile } from '../lib/hash.ts';
import { chownTree, throwawayUser } from '../test/support/throwaway-user.ts';
import { hostArch } from '../lib/arch.ts';

const repo = resolve(import.meta.dirname, '..');
const args = [...variantArgs({ arch: hostArch() ?? 'x86_64' }), 'bookworm'];
const env = { ...process.env, SOURCE_DATE_EPOCH: String(BASE_EPOCH) };
const work = await fs.mkdtemp(join(tmpdir(), `sov-bench-base-${process.pid}-`));
const user = await throwawayUser('bench');
const seconds: Record<string, number[]> = {};
const timed = async (name: string, run: () => Promise<unknown>) => {
  const t = Date.now();
  await run();
  (seconds[name] ??= []).push((Date.now() - t) / 1000);
  console.log(`${name}: ${seconds[name].at(-1)!.toFixed(1)}s`);
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
try {
  await exec(join(repo, 'scripts/setup-host.sh'), ['--no-daemon'], { env: { ...process.env, SUDO_USER: user.name } });
  const own = join(work, 'user');
  await fs.mkdir(own);
  await chownTree(own, user);
  await fs.chmod(work, 0o755);
  const runs: Array<[string, () => Promise<unknown>]> = [
    ['mmdebstrap --mode=root as root', () => exec('mmdebstrap', ['--mode=root', ...args, join(work, 'root.tar')], { env })],
    ['mmdebstrap --mode=unshare as root', () => exec('mmdebstrap', ['--mode=unshare', ...args, join(work, 'unshare.tar')], { env })],
    [`mmdebstrap --mode=unshare as ${user.name}`, () => exec('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', 'mmdebstrap', '--mode=unshare', ...args, join(own, 'root.tar')], {
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: own, SOURCE_DATE_EPOCH: String(BASE_EPOCH) },
    })],
    ['debootstrap as root', async () => {
      await exec('debootstrap', [...args, join(work, 'debootstrap')]);
      await exec('rm', ['-rf', '--one-file-system', join(work, 'debootstrap')]);
    }],
  ];
  for (const [name, run] of [...runs, ...[...runs].reverse()]) await timed(name, run);
  // The same recipe and mirror give the same bytes whoever runs mmdebstrap and in which mode (SOURCE_DATE_EPOCH).
  const tars = await Promise.all(['root.tar', 'unshare.tar', 'user/root.tar'].map((f) => hashFile(join(work, f))));
  console.log(`mmdebstrap tars identical: ${tars.every((h) => h === tars[0])} (${tars.map((h) => h.slice(0, 12)).join(' ')})`);
  const base = mean(seconds[runs[0][0]]);
  console.log(JSON.stringify(Object.fromEntries(Object.entries(seconds).map(([k, v]) => [k, { seconds: v.map((x) => Number(x.toFixed(1))), ratio: Number((mean(v) / base).toFixed(2)) }])), null, 2));
} finally {
  await exec('rm', ['-rf', '--one-file-system', work], { nothrow: true });
  await user.remove();
}
