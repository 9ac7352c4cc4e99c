// Tool identity for keys: versions of tools whose output depends on them, cached by the binary's stat.
import { promises as fs } from 'node:fs';
import { delimiter, join } from 'node:path';
import { exec } from './exec.ts';

/** name -> [command, args that print its version]. Only tools that shape an artifact belong here. */
const VERSION_ARGS: Record<string, [string, string[]]> = {
  mke2fs: ['mke2fs', ['-V']],
  debugfs: ['debugfs', ['-V']],
  debootstrap: ['debootstrap', ['--version']],
  docker: ['docker', ['--version']],
  podman: ['podman', ['--version']],
};

/**
 * The system folders an ordinary user's PATH leaves out on Debian (mkfs.ext4, debugfs and debootstrap live there):
 * added at the end, so a user's own PATH still wins. Root's PATH has them already.
 */
export function withSbin(path = process.env.PATH ?? ''): string {
  const dirs = path.split(delimiter).filter(Boolean);
  return [...dirs, ...['/usr/local/sbin', '/usr/sbin', '/sbin'].filter((d) => !dirs.includes(d))].join(delimiter);
}

export async function which(cmd: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, cmd);
    if (await fs.access(p, fs.constants.X_OK).then(() => true, () => false)) return p;
  }
  return undefined;
}

/**
 * Version strings of `names`, remembered in `memo` by (binary path, size, mtime) so an unchanged
 * tool costs a stat, not a process start.
 */
export async function toolVersions(names: string[], memo: Record<string, string>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const spec = VERSION_ARGS[name];
    if (!spec) throw new Error(`tool '${name}' has no version command in lib/tools.ts`);
    const bin = await which(spec[0]);
    if (!bin) { out[name] = 'missing'; continue; }
    const st = await fs.stat(bin);
    const id = `${bin}:${st.size}:${st.mtimeMs}`;
    if (!memo[id]) {
      const r = await exec(bin, spec[1], { nothrow: true, timeoutMs: 10_000 });
      memo[id] = (r.stdout + r.stderr).split('\n').find((l) => /\d+\.\d+/.test(l))?.trim() ?? 'unknown';
    }
    out[name] = memo[id];
  }
  return out;
}
