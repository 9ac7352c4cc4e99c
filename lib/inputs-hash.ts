// `sovereign hash`: one stable hash of every input of a graph (not of outputs), e.g. for CI cache keys.
import { keyOf, keyParts } from './key.ts';
import { StatCache } from './hash.ts';
import type { TaskGraph } from './graph.ts';
import { topoOrder } from './graph.ts';

/** Hash of each task's own key parts (config, files, tools, step versions) and the graph's shape. */
export async function inputHash(g: TaskGraph, root: string): Promise<string> {
  const stat = new StatCache();
  const own: Record<string, string> = {};
  for (const id of topoOrder(g)) {
    const n = g.nodes.get(id)!;
    const inputs = (await n.step.inputs?.(n.ctx)) ?? {};
    const deps = Object.fromEntries(n.deps.map((d) => [d, 'edge']));
    own[id] = keyOf(await keyParts({ stepName: n.step.name, version: n.step.version, kind: n.step.kind, device: n.ctx.device }, inputs, deps, { root, stat, toolMemo: {} }));
  }
  return keyOf(own);
}
