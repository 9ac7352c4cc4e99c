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
  // A device task does not take a work slot: the device already runs one at a time, and its work is mostly waiting
  // (a push on the wire, a boot until ready) while the slots' builds use the cores. Counted against them, a 50 ms
  // push waited seconds behind a kernel fetch, and a VM's boot kept a dependent's build waiting.
  const run = async () => node.step.run?.(ctx);
  const ret = await (node.step.usesDevice ? run() : core.slots.with(run));
  if (signal.aborted) throw new Cancelled();
  if (node.step.kind === 'effect') core.remember(node, key, parts, key);
  done('ran', ret && ret.note ? `${reason}; ${ret.note}` : reason, { bytes: ret ? ret.bytes : undefined });
}
