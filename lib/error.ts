// Expected failures as values (Result) and the one error type users see; exceptions elsewhere are bugs.

export type Result<T, E = UserError> = { ok: true; value: T } | { ok: false; error: E };
export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const err = <E>(error: E): Result<never, E> => ({ ok: false, error });

/** Exit codes: each failure kind has its own, so scripts can tell them apart. */
export const EXIT = {
  ok: 0,
  /** a task failed */
  failed: 1,
  /** bad command line: unknown command, task or flag */
  usage: 2,
  /** the config file is invalid */
  config: 3,
  /** the environment is not ready: docker daemon, device, tool missing */
  environment: 4,
  /** another run holds the lock */
  locked: 5,
  /** an internal error: a bug in sovereign (please report it) */
  bug: 70,
  /** stopped by Ctrl-C or SIGTERM */
  interrupted: 130,
} as const;
export type ExitKind = keyof typeof EXIT;

/**
 * An error meant for the user: says what went wrong and where, with a hint for what to do next.
 * `code` picks the exit code.
 */
export class UserError extends Error {
  readonly hint?: string;
  readonly code: ExitKind;
  /** Last lines of a log or tool output worth showing. */
  readonly details?: string[];
  constructor(message: string, opts: { hint?: string; code?: ExitKind; details?: string[] } = {}) {
    super(message);
    this.name = 'UserError';
    this.hint = opts.hint;
    this.code = opts.code ?? 'failed';
    this.details = opts.details;
  }
}

/** Thrown inside a task when the run was cancelled (Ctrl-C, fail-fast). */
export class Cancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'Cancelled';
  }
}

const ERRNO_HINTS: Record<string, string> = {
  ENOSPC: 'the disk is full: free some space (e.g. `sovereign cache gc --max-size 5G`) and run again',
  EDQUOT: 'the disk quota is exhausted: free some space and run again',
  EACCES: 'permission denied: check the owner and mode of the path, or run as the user who owns the repo',
  EPERM: 'operation not permitted: check the owner and mode of the path',
  EROFS: 'the file system is read-only',
  EMFILE: 'too many open files: raise the limit (ulimit -n) or lower --concurrency',
  EISDIR: 'a folder is where a file belongs: remove or rename the folder, or name a file',
  ENOTDIR: 'a file is where a folder belongs: check the path',
};

/** Turns an expected system failure (disk full, permission denied, …) into a UserError; undefined for anything else (a bug). */
export function fromSystemError(e: unknown): UserError | undefined {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (!code || !ERRNO_HINTS[code]) return undefined;
  const err = e as NodeJS.ErrnoException & { dest?: string };
  // A rename onto a folder fails on its destination (the folder), not on the temp file it moves.
  const path = err.syscall === 'rename' && code === 'EISDIR' && err.dest ? err.dest : err.path;
  return new UserError(`${code}${path ? ` on ${path}` : ''}: ${(e as Error).message.replace(/^\w+: /, '')}`, { code: 'environment', hint: ERRNO_HINTS[code] });
}
