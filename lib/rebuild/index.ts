// The rebuilder: is a task up to date? One `execute` hands each task to the module for its step kind; early
// cutoff falls out of keys built from dependencies' output hashes.
import { Cancelled, fromSystemError, UserError } from '../error.ts';
import type { TaskGraph } from '../graph.ts';
import type { KeyParts } from '../key.ts';
import { aggregate } from './aggregate.ts';
import { artifact, restoreArtifact } from './artifact.ts';
import { type Done, RebuildCore, type RebuilderOptions } from './core.ts';
import { createOnce } from './create-once.ts';
import { effect } from './effect.ts';

export { dataDir, outDir, type RebuilderOptions, tmpRoot } from './core.ts';
export { EngineState, type TaskMemory } from './state.ts';

export class Rebuilder {
  private readonly core: RebuildCore;

  constructor(g: TaskGraph, o: RebuilderOptions) {
    this.core = new RebuildCore(g, o, restoreArtifact);
  }

  /** Key parts of every task whose key was computed in this dry run (for `why`). */
  get parts(): Map<string, KeyParts> { return this.core.parts; }

  /** Brings one task up to date; its dependencies have already been executed. */
  async execute(id: string, signal: AbortSignal): Promise<void> {
    const core = this.core;
    const node = core.g.nodes.get(id)!;
    const started = Date.now();
    const done: Done = (outcome, reason, extra = {}) => {
      const r = core.results.get(id);
      core.o.emit({ type: 'done', task: id, outcome, reason, durationMs: Date.now() - started, key: r?.key, outputHash: r?.outputHash, ...extra });
    };
    try {
      if (node.alias) {
        core.results.set(id, core.result(node.alias));
        return done(core.result(node.alias).unknown ? 'would-run' : 'fresh', `same as ${node.alias}`);
      }
      const kind = node.step.kind;
      if (kind === 'aggregate') return await aggregate(core, node, signal, done);
      if (kind === 'artifact') return await artifact(core, node, signal, done);
      if (kind === 'create-once') return await createOnce(core, node, signal, done);
      return await effect(core, node, signal, done);
    } catch (e) {
      if (e instanceof Cancelled || signal.aborted) { core.o.emit({ type: 'cancelled', task: id }); throw new Cancelled(); }
      const u = e instanceof UserError ? e : fromSystemError(e);
      const message = u ? u.message : `internal error (a bug in sovereign, please report it): ${String((e as Error)?.stack ?? e)}`;
      core.o.emit({ type: 'failed', task: id, message, hint: u?.hint, details: u?.details, durationMs: Date.now() - started, code: u ? u.code : 'bug' });
      throw u ?? e;
    }
  }
}
