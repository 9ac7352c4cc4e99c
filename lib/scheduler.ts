// The scheduler: which task next and how many at once — dependencies first, a concurrency limit,
// one task at a time per exclusive resource (a device), fail fast or --continue.
import type { TaskGraph } from './graph.ts';
import { Cancelled } from './error.ts';

export interface ScheduleOptions {
  concurrency: number;
  /** Go on with branches that do not depend on a failed task. */
  keepGoing: boolean;
  signal: AbortSignal;
  /** A resource the task holds exclusively while it runs (e.g. `device:phone`), if any. */
  resource(id: string): string | undefined;
  run(id: string, signal: AbortSignal): Promise<void>;
  /** `id` will not run because `by` failed or was cancelled. */
  onBlocked(id: string, by: string, cause: 'failed' | 'cancelled'): void;
}

export interface ScheduleResult {
  failed: string[];
  blocked: string[];
  cancelled: string[];
}

export function schedule(g: TaskGraph, opts: ScheduleOptions): Promise<ScheduleResult> {
  const waiting = new Map<string, number>(); // task -> unfinished dependencies
  const dependents = new Map<string, string[]>();
  for (const n of g.nodes.values()) {
    waiting.set(n.id, n.deps.length);
    for (const d of n.deps) {
      const list = dependents.get(d);
      if (list) list.push(n.id); else dependents.set(d, [n.id]);
    }
  }
  // Ready tasks: those needing no resource, and one queue per resource (so picking stays O(1) in graph size).
  const ready: string[] = [];
  const readyFor = new Map<string, string[]>();
  const enqueue = (id: string) => {
    const r = opts.resource(id);
    if (!r) return ready.push(id);
    const q = readyFor.get(r);
    if (q) q.push(id); else readyFor.set(r, [id]);
  };
  const next = (): string | undefined => {
    for (const [r, q] of readyFor) if (q.length && !held.has(r)) return q.pop();
    return ready.pop();
  };
  const readyCount = () => ready.length + [...readyFor.values()].reduce((s, q) => s + q.length, 0);
  for (const n of g.nodes.values()) if (n.deps.length === 0) enqueue(n.id);
  const held = new Set<string>();
  const result: ScheduleResult = { failed: [], blocked: [], cancelled: [] };
  const inner = new AbortController();
  const onAbort = () => inner.abort();
  opts.signal.addEventListener('abort', onAbort, { once: true });
  let running = 0;
  let finished = 0;
  let stopping = opts.signal.aborted;

  return new Promise((resolve) => {
    const block = (id: string, by: string, cause: 'failed' | 'cancelled') => {
      for (const d of dependents.get(id) ?? []) {
        if (waiting.get(d) === -1) continue;
        waiting.set(d, -1);
        result.blocked.push(d);
        opts.onBlocked(d, by, cause);
        finished++;
        block(d, by, cause);
      }
    };
    const pump = () => {
      if (stopping && running === 0) return finish();
      while (!stopping && running < opts.concurrency) {
        const id = next();
        if (id === undefined) break;
        const res = opts.resource(id);
        if (res) held.add(res);
        running++;
        opts.run(id, inner.signal).then(
          () => {
            for (const d of dependents.get(id) ?? []) {
              const left = (waiting.get(d) ?? 0) - 1;
              if (waiting.get(d) === -1) continue;
              waiting.set(d, left);
              if (left === 0) enqueue(d);
            }
          },
          (e) => {
            const cancelled = e instanceof Cancelled;
            if (cancelled) result.cancelled.push(id);
            else {
              result.failed.push(id);
              if (!opts.keepGoing) { stopping = true; inner.abort(); }
            }
            block(id, id, cancelled ? 'cancelled' : 'failed');
          },
        ).finally(() => {
          running--;
          finished++;
          if (res) held.delete(res);
          if (opts.signal.aborted) stopping = true;
          pump();
        });
      }
      if (running === 0 && (stopping || finished === g.nodes.size || readyCount() === 0)) finish();
    };
    const finish = () => {
      opts.signal.removeEventListener('abort', onAbort);
      resolve(result);
    };
    pump();
  });
}
