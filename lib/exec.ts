// Running tools: one place that spawns processes, streams their output, and stops them (whole process group) on abort.
import { spawn } from 'node:child_process';
import { Cancelled, UserError } from './error.ts';

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to stdin (secrets go here, never into argv); a stream is piped (large uploads). */
  input?: string | Buffer | NodeJS.ReadableStream;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Called with each complete line of stdout/stderr as it arrives. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Resolve with a non-zero code instead of throwing. */
  nothrow?: boolean;
  /** Keep at most this many bytes of stdout (default 64 MiB). */
  maxBuffer?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

const GRACE_MS = 3000;
/** After a killed tool exits, how long its pipes may stay open (held by a process outside its group) before we close them. */
const KILLED_CLOSE_MS = 500;

/** Process groups of tools still running: stopped synchronously if sovereign itself must exit at once. */
const live = new Set<number>();

/** Kills every tool still running (whole process groups). For a forced exit; normal aborts go through `signal`. */
export function killAllTools(sig: NodeJS.Signals = 'SIGKILL'): void {
  for (const pid of live) killGroup(pid, sig);
}

/**
 * Runs `cmd args…` without a shell. Throws UserError on a non-zero exit (with the last stderr lines),
 * Cancelled when `signal` aborts (after stopping the process group: TERM, then KILL).
 */
export function exec(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new Cancelled());
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // own process group, so abort stops grandchildren too
    });
    if (child.pid) live.add(child.pid);
    let stdout = '';
    let stderr = '';
    const max = opts.maxBuffer ?? 64 * 1024 * 1024;
    const partial = { stdout: '', stderr: '' };
    const feed = (stream: 'stdout' | 'stderr', chunk: Buffer) => {
      const text = chunk.toString();
      if (stream === 'stdout') { if (stdout.length < max) stdout += text; } else stderr = (stderr + text).slice(-65536);
      if (!opts.onLine) return;
      const lines = (partial[stream] + text).split('\n');
      partial[stream] = lines.pop() ?? '';
      for (const l of lines) opts.onLine(l, stream);
    };
    child.stdout.on('data', (c: Buffer) => feed('stdout', c));
    child.stderr.on('data', (c: Buffer) => feed('stderr', c));
    child.stdin.on('error', () => {});
    if (typeof opts.input === 'object' && 'pipe' in opts.input) opts.input.pipe(child.stdin);
    else child.stdin.end(opts.input ?? '');
    let killed: 'abort' | 'timeout' | undefined;
    let exited = false;
    // Killed, it may still not close: an ssh ControlMaster holds a mux client's stdio until the device's command ends
    // (minutes for a delta assembly). What it would print no longer matters: close the pipes on our side.
    const closeSoon = () => setTimeout(() => { child.stdout.destroy(); child.stderr.destroy(); }, KILLED_CLOSE_MS).unref();
    const stop = (why: 'abort' | 'timeout') => {
      killed = why;
      killGroup(child.pid, 'SIGTERM');
      setTimeout(() => killGroup(child.pid, 'SIGKILL'), GRACE_MS).unref();
      // Already exited (its pipes held by someone else): no exit event will come to close them.
      if (exited) closeSoon();
    };
    const onAbort = () => stop('abort');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = opts.timeoutMs ? setTimeout(() => stop('timeout'), opts.timeoutMs) : undefined;
    child.on('error', (e: NodeJS.ErrnoException) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
      reject(e.code === 'ENOENT' ? new UserError(`${cmd}: command not found`, { code: 'environment', hint: `install ${cmd} (see \`sovereign preflight\`)` }) : e);
    });
    child.on('exit', () => {
      exited = true;
      if (killed) closeSoon();
    });
    child.on('close', (code, sig) => {
      if (child.pid) live.delete(child.pid);
      opts.signal?.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
      if (opts.onLine) for (const s of ['stdout', 'stderr'] as const) if (partial[s]) opts.onLine(partial[s], s);
      if (killed === 'abort') return reject(new Cancelled());
      if (killed === 'timeout') return reject(new UserError(`${cmd} timed out after ${Math.round(opts.timeoutMs! / 1000)}s`, { details: tail(stderr) }));
      const result = { code: code ?? (sig ? 128 : 1), stdout, stderr };
      if (result.code !== 0 && !opts.nothrow) return reject(new UserError(`${cmd} ${args[0] ?? ''} failed (exit ${result.code})`, { details: tail(stderr || stdout) }));
      resolve(result);
    });
  });
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals) {
  if (!pid) return;
  try { process.kill(-pid, sig); } catch { /* already gone */ }
}

export function tail(text: string, n = 10): string[] {
  return text.trimEnd().split('\n').filter(Boolean).slice(-n);
}
