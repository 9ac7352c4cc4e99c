// The run summary: collects events into one JSON document (tasks, keys, outcomes, durations, bytes) for files and --json.
import type { RunEvent } from '../events.ts';

export interface TaskSummary {
  task: string;
  outcome: string;
  reason?: string;
  key?: string;
  outputHash?: string;
  durationMs?: number;
  cutoff?: boolean;
  bytes?: number;
  error?: string;
  /** The lines a step with `answers` reported (status, logs, test results). */
  output?: string[];
  /** The same answer as data (status: `running`, `ready`, …). */
  facts?: Record<string, unknown>;
}

export interface RunSummary {
  command: string[];
  device?: string;
  ok: boolean;
  interrupted: boolean;
  durationMs: number;
  counts: Record<string, number>;
  /** Bytes moved by all tasks (pushed to the device, downloaded). */
  bytes: number;
  tasks: TaskSummary[];
  warnings: string[];
}

export function summaryCollector(command: string[]) {
  const s: RunSummary = { command, ok: false, interrupted: false, durationMs: 0, counts: {}, bytes: 0, tasks: [], warnings: [] };
  // A task can be reported twice (cached, then restored or re-run when a dependent needed it): the last word counts.
  const byTask = new Map<string, TaskSummary>();
  const output = new Map<string, string[]>();
  const facts = new Map<string, Record<string, unknown>>();
  // `t` is made fresh for each event below, so it is completed in place: a spread copy per task (35,000 at 5,000
  // services) was garbage-collection time.
  const add = (t: TaskSummary) => {
    const lines = output.get(t.task);
    if (lines) t.output = lines;
    const known = facts.get(t.task);
    if (known) t.facts = known;
    byTask.set(t.task, t);
  };
  const onEvent = (e: RunEvent) => {
    switch (e.type) {
      case 'plan': s.device = e.device; break;
      case 'log': if (e.answer) output.set(e.task, [...(output.get(e.task) ?? []), e.line]); break;
      case 'facts': facts.set(e.task, { ...facts.get(e.task), ...e.facts }); break;
      case 'done': add({ task: e.task, outcome: e.outcome, reason: e.reason, key: e.key, outputHash: e.outputHash, durationMs: e.durationMs, cutoff: e.cutoff, bytes: e.bytes }); break;
      case 'failed': add({ task: e.task, outcome: 'failed', error: e.message, durationMs: e.durationMs }); break;
      case 'cancelled': add({ task: e.task, outcome: 'cancelled' }); break;
      case 'blocked': add({ task: e.task, outcome: 'blocked', reason: `${e.by} ${e.cause}` }); break;
      case 'warning': s.warnings.push(e.message); break;
      case 'end': Object.assign(s, { ok: e.ok, interrupted: e.interrupted, durationMs: e.durationMs }); break;
    }
  };
  const summary = (): RunSummary => {
    s.tasks = [...byTask.values()];
    s.counts = {};
    for (const t of s.tasks) s.counts[t.outcome] = (s.counts[t.outcome] ?? 0) + 1;
    s.bytes = s.tasks.reduce((n, t) => n + (t.bytes ?? 0), 0);
    return s;
  };
  return { onEvent, summary };
}
