// Artifact steps: outputs addressed by key — hit the store, restore on demand, or run into a temp dir and store.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Cancelled, UserError } from '../error.ts';
import { hashFile } from '../hash.ts';
import type { TaskNode } from '../graph.ts';
import { outputHashOf, recordMismatch } from '../store/record.ts';
import { renameDurable } from '../fsutil.ts';
import type { CacheRecord } from '../store/store.ts';
import type { DepOutput } from '../task.ts';
import { type Done, outDir, type RebuildCore, type TaskResult } from './core.ts';

export async function artifact(core: RebuildCore, node: TaskNode, signal: AbortSignal, done: Done): Promise<void> {
  const o = core.o;
  const unknownDep = core.unknownDep(node);
  if (unknownDep) {
    core.results.set(node.id, { outputHash: '', files: {}, materialised: false, unknown: true });
    return done('would-run', `dependency ${unknownDep} will run`);
  }
  const wanted = core.wanted.has(node.id);
  for (;;) {
    const { key, parts } = await core.key(node);
    const rec = o.flags.force ? undefined : await storedRecord(core, node, key);
    if (rec) {
      core.remember(node, key, parts, rec.outputHash);
      const files = filesOf(core, node, rec);
      core.results.set(node.id, { key, outputHash: rec.outputHash, files, value: rec.value, materialised: false });
      // A value output (an image) is only looked for when wanted: checking would run docker.
      if (await isPresent(core, node, rec, wanted && !o.dryRun)) {
        core.results.get(node.id)!.materialised = true;
        return done('fresh', 'up to date');
      }
      if (!wanted || o.dryRun) return done('cached', o.dryRun && wanted ? 'would restore from the cache' : 'in the cache; not needed on disk');
      if (await core.materialise(node.id, signal)) continue; // restore failed and the re-run changed the output
      return done('restored', `restored from the ${o.store.name} cache`);
    }
    const reason = core.whyRun(node, parts);
    const same = core.inflight.get(key);
    if (same && !o.flags.force) {
      await same.catch(() => undefined);
      continue;
    }
    if (o.dryRun) {
      core.results.set(node.id, { key, outputHash: '', files: {}, materialised: false, unknown: true });
      return done('would-run', reason);
    }
    const previous = o.state.tasks[node.id]?.outputHash;
    // Registered before anything is awaited, so a second task with this key waits instead of building too.
    const work = (async () => ((await core.materialiseDeps(node, signal)) ? undefined : run(core, node, key, reason, signal)))();
    core.inflight.set(key, work);
    const out = await work.finally(() => core.inflight.delete(key));
    if (!out) continue; // a dependency had to re-run with new output: recompute the key
    core.remember(node, key, parts, out.outputHash);
    return done('ran', reason, { cutoff: previous === out.outputHash });
  }
}

/** Runs an artifact step into a temp dir, stores its outputs, then moves them into place. */
function run(core: RebuildCore, node: TaskNode, key: string, reason: string, signal: AbortSignal): Promise<TaskResult> {
  return core.slots.with(() => runNow(core, node, key, reason, signal));
}

async function runNow(core: RebuildCore, node: TaskNode, key: string, reason: string, signal: AbortSignal): Promise<TaskResult> {
  const o = core.o;
  o.emit({ type: 'start', task: node.id, reason });
  const started = Date.now();
  const tmp = await core.tmpDir();
  try {
    const ret = await node.step.run!(core.context(node, key, tmp, outDir(o.root, node.service.name), signal));
    if (signal.aborted) throw new Cancelled();
    const files: CacheRecord['files'] = [];
    for (const name of node.step.outputs?.(node.ctx) ?? []) {
      const p = join(tmp, name);
      const st = await fs.stat(p).catch(() => undefined);
      if (!st) throw new UserError(`${node.id} did not produce ${name}`);
      const digest = await hashFile(p, (d, t) => o.emit({ type: 'progress', task: node.id, done: d, total: t, label: `hashing ${name}` }));
      // Only the exec bit: the umask of whoever built it must not change the output hash.
      files.push({ name, sha256: digest, size: st.size, mode: st.mode & 0o111 ? 0o755 : 0o644 });
    }
    const value = ret && 'value' in ret ? ret.value : undefined;
    const outputHash = outputHashOf(files, value);
    const record: CacheRecord = { schema: 1, key, task: node.id, files, value, outputHash, durationMs: Date.now() - started, tools: {}, createdAt: new Date().toISOString() };
    for (const f of files) await o.store.putBlob(f.sha256, join(tmp, f.name));
    const final = outDir(o.root, node.service.name);
    await fs.mkdir(final, { recursive: true });
    for (const f of files) {
      await renameDurable(join(tmp, f.name), join(final, f.name));
      await o.stat.remember(join(final, f.name), f.sha256);
    }
    // The record goes last: if anything above failed or was interrupted, nothing claims this key is done.
    await o.store.putRecord(record);
    const result: TaskResult = { key, outputHash, files: filesOf(core, node, record), value, materialised: true };
    core.results.set(node.id, result);
    return result;
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** The store's record for `key` when it fits the step (see recordMismatch); one that does not is evicted. */
async function storedRecord(core: RebuildCore, node: TaskNode, key: string): Promise<CacheRecord | undefined> {
  const rec = await core.o.store.getRecord(key);
  const why = rec && recordMismatch(rec, node.step.outputs?.(node.ctx) ?? [], node.step.valueShape?.bind(node.step));
  if (!why) return rec;
  core.o.emit({ type: 'warning', message: `${node.id}: the cached record ${why}; ignored and evicted, the step runs` });
  await core.o.store.evict?.(key);
  return undefined;
}

function filesOf(core: RebuildCore, node: TaskNode, rec: CacheRecord): DepOutput['files'] {
  const files: DepOutput['files'] = {};
  for (const f of rec.files) files[f.name] = { sha256: f.sha256, size: f.size, path: core.outPath(node, f.name) };
  return files;
}

async function isPresent(core: RebuildCore, node: TaskNode, rec: CacheRecord, checkValue: boolean): Promise<boolean> {
  for (const f of rec.files) {
    if ((await core.o.stat.hashFile(core.outPath(node, f.name))) !== f.sha256) return false;
  }
  if (!node.step.present) return true;
  return checkValue && node.step.present(node.ctx, rec.value);
}

/** Restores an executed artifact's outputs from the store, or re-runs it; true when its output hash changed. */
export async function restoreArtifact(core: RebuildCore, node: TaskNode, signal: AbortSignal): Promise<boolean> {
  const o = core.o;
  const id = node.id;
  const started = Date.now();
  const r = core.result(id);
  const rec = await storedRecord(core, node, r.key!);
  let ok = !!rec;
  for (const f of rec?.files ?? []) {
    const dest = core.outPath(node, f.name);
    if ((await o.stat.hashFile(dest)) === f.sha256) continue;
    o.emit({ type: 'log', task: id, line: `restoring ${f.name} (${f.size} bytes) from the ${o.store.name} cache` });
    ok = await core.slots.with(() => o.store.fetchBlob(f.sha256, f.size, dest, (d, t) => o.emit({ type: 'progress', task: id, done: d, total: t, label: `restoring ${f.name}` })));
    if (!ok) break;
    await fs.chmod(dest, f.mode);
    await o.stat.remember(dest, f.sha256);
  }
  if (ok && rec && (!node.step.present || (await node.step.present(node.ctx, rec.value)))) {
    r.materialised = true;
    o.emit({ type: 'done', task: id, outcome: 'restored', reason: `needed by a dependent; restored from the ${o.store.name} cache`, durationMs: Date.now() - started, key: r.key, outputHash: r.outputHash });
    return false;
  }
  // Corrupt or missing blob, or a value output gone (image deleted): forget the record, run the step.
  if (rec && !ok) {
    o.emit({ type: 'warning', message: `${id}: cached output is missing or corrupt; evicted, re-running` });
    await o.store.evict?.(r.key!);
  }
  const before = r.outputHash;
  await core.materialiseDeps(node, signal);
  const { key, parts } = await core.key(node);
  const reason = rec && !ok ? 'cached output was corrupt' : 'output not present (needed by a dependent)';
  const out = await run(core, node, key, reason, signal);
  core.remember(node, key, parts, out.outputHash);
  o.emit({ type: 'done', task: id, outcome: 'ran', reason, durationMs: Date.now() - started, key, outputHash: out.outputHash, cutoff: out.outputHash === before });
  return out.outputHash !== before;
}
