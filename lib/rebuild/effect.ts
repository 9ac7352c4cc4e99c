// Effect and always steps: act on the device; an effect is skipped when its check says the device is up to date.
import { Cancelled } from '../error.ts';
import type { TaskNode } from '../graph.ts';
import type { KeyParts } from '../key.ts';
import type { RunContext } from '../task.ts';
import type { Done, RebuildCore } from './core.ts';

export async function effect(core: RebuildCore, node: TaskNode, signal: AbortSignal, done: Done): Promise<void> {
  const o = core.o;
  const unknownDep = core.unknownDep(node);
  if (unknownDep) {
    core.results.set(node.id, { key: '', outputHash: '', files: {}, materialised: true, unknown: true });
    return done('would-run', `dependency ${unknownDep} will run`);
  }
  let key: string;
  let parts: KeyParts;
  let reason = 'always runs';
  let ctx: RunContext;
  for (;;) {
    ({ key, parts } = await core.key(node));
    core.results.set(node.id, { key, outputHash: key, files: {}, materialised: true });
    ctx = core.context(node, key, '', '', signal);
    if (node.step.kind === 'effect') {
      const state = o.flags.force ? 'forced (--force)' : node.step.check ? await node.step.check(ctx) : 'no check';
      if (state === true) {
        core.remember(node, key, parts, key);
        return done('skipped', 'device already up to date');
      }
      reason = state;
    }
    if (o.dryRun) return done('would-run', reason);
    // Restoring may re-run a dependency with new output: then this effect's key and check change too.
    if (!(await core.materialiseDeps(node, signal))) break;
  }
  o.emit({ type: 'start', task: node.id, reason });
  const ret = await core.slots.with(async () => node.step.run?.(ctx));
  if (signal.aborted) throw new Cancelled();
  if (node.step.kind === 'effect') core.remember(node, key, parts, key);
  done('ran', ret && ret.note ? `${reason}; ${ret.note}` : reason, { bytes: ret ? ret.bytes : undefined });
}
