// A throwaway busybox chroot holding the real vm/common/init-lib.sh (as /sbin/init-lib.sh), for running the guest's
// init functions on this machine (root) in private mount and pid namespaces, and a private network one on request:
// nothing reaches this machine's kernel switches, mounts or interfaces. No /proc: files stand in where init reads it.
import * as assert from 'uvu/assert';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { exec } from '../../lib/exec.ts';
import { which } from '../../lib/tools.ts';
import { repo } from './cli.ts';

/** A new root with busybox, init-lib.sh, the folders in `dirs` and the files in `files` (path in the root -> content). */
export async function busyboxRoot(dirs: string[], files: Record<string, string> = {}): Promise<string> {
  assert.is(process.getuid?.(), 0, 'this test runs as root: it makes namespaces and a chroot');
  const busybox = await which('busybox');
  assert.ok(busybox, 'busybox is installed (apt-get install busybox-static)');
  const root = mkdtempSync(join(tmpdir(), 'sov-busybox-root-'));
  for (const d of ['bin', 'sbin', 'proc', 'dev', ...dirs]) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(busybox, join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  copyFileSync(join(repo, 'vm/common/init-lib.sh'), join(root, 'sbin/init-lib.sh'));
  writeFileSync(join(root, 'dev/null'), '');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  await exec('chroot', [root, '/bin/busybox', '--install', '-s', '/bin']);
  return root;
}

/**
 * Runs `script` with /bin/sh in the root, in new mount and pid namespaces (whatever it leaves running ends with it)
 * and, with `net`, a new network namespace where `setup` (sh, run as root outside the chroot, the root as $1) may
 * add interfaces first and /sys shows only them.
 */
export async function runInRoot(root: string, script: string, opts: { net?: boolean; setup?: string } = {}): Promise<{ code: number; out: string }> {
  writeFileSync(join(root, 'test.sh'), `[ -e /proc/self ] && { echo 'not in the test root: stopping'; exit 2; }\n${script}`);
  const inner = `mount --bind /dev/null "$1/dev/null" && ${opts.setup ?? ':'} && ` +
    `${opts.net ? 'mkdir -p "$1/sys" && mount -t sysfs sysfs "$1/sys" && ' : ''}exec chroot "$1" /bin/sh /test.sh`;
  const r = await exec('unshare', ['--mount', '--propagation', 'private', '--pid', '--fork', ...(opts.net ? ['--net'] : []), 'sh', '-c', inner, 'sh', root],
    { nothrow: true, timeoutMs: 60_000, env: { PATH: '/usr/local/bin:/bin:/usr/bin:/sbin:/usr/sbin' } });
  return { code: r.code, out: r.stdout + r.stderr };
}
