// Create-once steps (data disks): made when missing, never overwritten unless --fresh-data and the user agrees.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Cancelled, UserError } from '../error.ts';
import { fsyncPath } from '../fsutil.ts';
import type { TaskNode } from '../graph.ts';
import { diffParts } from '../key.ts';
import { dataDir, type Done, type RebuildCore } from './core.ts';

export async function createOnce(core: RebuildCore, node: TaskNode, signal: AbortSignal, done: Done): Promise<void> {
  const o = core.o;
  const { key, parts } = await core.key(node);
  const dir = dataDir(o.root, node.service.name);
  const names = node.step.outputs?.(node.ctx) ?? [];
  const files = Object.fromEntries(names.map((n) => [n, { sha256: key, size: 0, path: join(dir, n) }]));
  // The output hash is the recipe (the key), never the content: user data changes as it is used.
  core.results.set(node.id, { key, outputHash: key, files, materialised: true });
  const present = (await Promise.all(names.map((n) => fs.access(join(dir, n)).then(() => true, () => false)))).every(Boolean);
  const before = o.state.tasks[node.id];
  if (present && !o.flags.freshData) {
    core.remember(node, key, parts, key);
    const beforeParts = before && before.key !== key ? o.state.partsOf(node.id) : undefined;
    const note = before && before.key !== key ? ` (its settings changed${beforeParts ? `: ${diffParts(beforeParts, parts).join(', ')}` : ''}; --fresh-data recreates it)` : '';
    return done('skipped', `exists; user data is never overwritten${note}`);
  }
  if (o.dryRun) return done('would-run', present ? '--fresh-data: would replace it (asks first)' : 'does not exist yet');
  if (present && !(await o.confirm(`Recreate ${names.join(', ')} of ${node.service.name} (the empty disk that deploys push) from scratch?`))) {
    throw new UserError(`not replacing ${node.service.name}'s data disk`, { hint: 'answer yes, or pass --yes in scripts' });
  }
  o.emit({ type: 'start', task: node.id, reason: present ? 'replacing (--fresh-data)' : 'does not exist yet' });
  const tmp = await core.tmpDir();
  try {
    await core.slots.with(() => node.step.run!(core.context(node, key, tmp, dir, signal)));
    if (signal.aborted) throw new Cancelled();
    await fs.mkdir(dir, { recursive: true });
    for (const n of names) {
      // link() never replaces an existing file: a data disk that appeared meanwhile is kept.
      await fsyncPath(join(tmp, n));
      if (present) await fs.rename(join(tmp, n), join(dir, n));
      else await fs.link(join(tmp, n), join(dir, n));
    }
    await fsyncPath(dir);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  core.remember(node, key, parts, key);
  done('ran', present ? 'replaced (--fresh-data)' : 'created');
}
