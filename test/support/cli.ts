// Runs the real `sovereign` binary (bin/sovereign.js, the bundle built by npm install) in a folder.
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { exec } from '../../lib/exec.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const repo = join(import.meta.dirname, '..', '..');
export const bin = join(repo, 'bin', 'sovereign.js');

export interface CliResult { code: number; stdout: string; stderr: string }

/** The environment an ordinary user's login gives on Debian: no sbin folders on PATH, a home of its own. */
const userEnv = (home: string) => ({ PATH: '/usr/local/bin:/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' });

/**
 * `user`: run as that uid/gid with its groups from /etc/group (setpriv; the caller is root) and an ordinary user's
 * environment (userEnv, the cwd as home, then `env`) instead of ours.
 */
export function sovereign(args: string[], opts: { cwd: string; env?: Record<string, string | undefined>; input?: string; signal?: AbortSignal; user?: { uid: number; gid: number }; bin?: string }): Promise<CliResult> {
  const cli = opts.bin ?? bin;
  const [cmd, argv, base] = opts.user
    ? ['setpriv', [`--reuid=${opts.user.uid}`, `--regid=${opts.user.gid}`, '--init-groups', process.execPath, cli, ...args], userEnv(opts.cwd)]
    : [process.execPath, [cli, ...args], process.env];
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { cwd: opts.cwd, env: { ...base, NO_COLOR: '1', ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'], signal: opts.signal });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.stdin.end(opts.input ?? '');
    child.on('error', () => {});
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** A copy of this repo's config and vm/ payloads in a temp folder: a checkout of its own, using the package at `pkg`. */
export function checkout(prefix = 'sovereign-checkout-', config?: string, pkg = repo): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  cpSync(join(repo, 'vm'), join(root, 'vm'), { recursive: true });
  writeFileSync(join(root, 'sovereign.config.ts'), config ?? readFileSync(join(repo, 'sovereign.config.ts'), 'utf8'));
  mkdirSync(join(root, 'node_modules'));
  symlinkSync(pkg, join(root, 'node_modules', 'sovereign'));
  return root;
}

/**
 * The built package as another user gets it: bin/, dist/, package.json and node_modules/ copied (hard links where
 * the file system allows: root's files, read-only to others) into a fresh folder anyone may read, so a repo under
 * a private home cannot hide it. `bin` is its CLI.
 */
export async function sharedPackage(): Promise<{ dir: string; bin: string; remove(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sovereign-package-'));
  chmodSync(dir, 0o755);
  const parts = ['bin', 'dist', 'package.json', 'node_modules'].map((p) => join(repo, p));
  const linked = await exec('cp', ['-al', ...parts, dir], { nothrow: true });
  if (linked.code !== 0) await exec('cp', ['-a', ...parts, dir]);
  return { dir, bin: join(dir, 'bin', 'sovereign.js'), remove: () => rm(dir, { recursive: true, force: true }) };
}
