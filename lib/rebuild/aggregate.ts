// Aggregate steps: no work of their own; up to date when their dependencies are, which they bring onto disk.
import { canonicalJson, sha256 } from '../hash.ts';
import type { TaskNode } from '../graph.ts';
import type { Done, RebuildCore } from './core.ts';

export async function aggregate(core: RebuildCore, node: TaskNode, signal: AbortSignal, done: Done): Promise<void> {
  const unknown = !!core.unknownDep(node);
  // Restoring may re-run a dependency with new output: hash after it.
  if (core.wanted.has(node.id) && !core.o.dryRun) await core.materialiseDeps(node, signal);
  core.results.set(node.id, { outputHash: sha256(canonicalJson(core.depHashes(node))), files: {}, materialised: true, unknown });
  done(unknown ? 'would-run' : 'fresh', unknown ? 'a dependency will run' : 'all dependencies up to date');
}
