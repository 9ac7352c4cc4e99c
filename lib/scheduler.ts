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
  onBlocked(id: string, by: string): void;
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
    for (const d of n.deps) dependents.set(d, [...(dependents.get(d) ?? []), n.id]);
  }
  const ready = [...g.nodes.values()].filter((n) => n.deps.length === 0).map((n) => n.id);
  const held = new Set<string>();
  const result: ScheduleResult = { failed: [], blocked: [], cancelled: [] };
  const inner = new AbortController();
  const onAbort = () => inner.abort();
  opts.signal.addEventListener('abort', onAbort, { once: true });
  let running = 0;
  let finished = 0;
  let stopping = opts.signal.aborted;

  return new Promise((resolve) => {
    const block = (id: string, by: string) => {
      for (const d of dependents.get(id) ?? []) {
        if (waiting.get(d) === -1) continue;
        waiting.set(d, -1);
        result.blocked.push(d);
        opts.onBlocked(d, by);
        finished++;
        block(d, by);
      }
    };
    const pump = () => {
      if (stopping && running === 0) return finish();
      while (!stopping && running < opts.concurrency) {
        const i = ready.findIndex((id) => { const r = opts.resource(id); return !r || !held.has(r); });
        if (i < 0) break;
        const [id] = ready.splice(i, 1);
        const res = opts.resource(id);
        if (res) held.add(res);
        running++;
        opts.run(id, inner.signal).then(
          () => {
            for (const d of dependents.get(id) ?? []) {
              const left = (waiting.get(d) ?? 0) - 1;
              if (waiting.get(d) === -1) continue;
              waiting.set(d, left);
              if (left === 0) ready.push(d);
            }
          },
          (e) => {
            if (e instanceof Cancelled) result.cancelled.push(id);
            else {
              result.failed.push(id);
              if (!opts.keepGoing) { stopping = true; inner.abort(); }
            }
            block(id, id);
          },
        ).finally(() => {
          running--;
          finished++;
          if (res) held.delete(res);
          if (opts.signal.aborted) stopping = true;
          pump();
        });
      }
      if (running === 0 && (stopping || finished === g.nodes.size || ready.length === 0)) finish();
    };
    const finish = () => {
      opts.signal.removeEventListener('abort', onAbort);
      resolve(result);
    };
    pump();
  });
}
