// Outcomes as data: execution emits these events; reporters (terminal, --json, run summary) render them.
import type { ExitKind } from './error.ts';

/**
 * ran: the step did its work. fresh: outputs present and up to date. restored: outputs copied back from the
 * store. cached: known from the store, outputs not needed on disk. skipped: an effect whose device state
 * already holds, or user data that exists. would-run: --dry-run.
 */
export type Outcome = 'ran' | 'fresh' | 'restored' | 'cached' | 'skipped' | 'would-run';

export type RunEvent =
  | { type: 'plan'; tasks: string[]; device: string; dryRun: boolean }
  | { type: 'start'; task: string; reason: string }
  /** `answer`: the line is what the command was run for (a step with `answers`), always shown. */
  | { type: 'log'; task: string; line: string; answer?: boolean }
  /** The answer of a step with `answers` as data (status: running, ready…), for `--json` and summaries. */
  | { type: 'facts'; task: string; facts: Record<string, unknown> }
  | { type: 'progress'; task: string; done: number; total?: number; label?: string }
  | { type: 'done'; task: string; outcome: Outcome; reason: string; durationMs: number; key?: string; outputHash?: string; cutoff?: boolean; bytes?: number }
  | { type: 'failed'; task: string; message: string; hint?: string; details?: string[]; durationMs: number; code: ExitKind }
  | { type: 'cancelled'; task: string }
  | { type: 'blocked'; task: string; by: string; cause: 'failed' | 'cancelled' }
  | { type: 'warning'; message: string }
  | { type: 'end'; ok: boolean; interrupted: boolean; durationMs: number };

export type Emit = (e: RunEvent) => void;
