// The rebuilder: is a task up to date? Computes its key, consults the store, restores or runs it,
// records what it produced; early cutoff falls out of keys built from dependencies' output hashes.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Config, Device } from './config.ts';
import type { DeviceSession } from './device/device.ts';
import { Cancelled, fromSystemError, UserError } from './error.ts';
import type { Emit, Outcome } from './events.ts';
import { canonicalJson, hashFile, sha256, type StatCache } from './hash.ts';
import { outputHashOf, recordMismatch } from './store/record.ts';
import { fsyncPath, renameDurable } from './fsutil.ts';
import type { TaskGraph, TaskNode } from './graph.ts';
import { diffParts, keyOf, keyParts, type KeyParts } from './key.ts';
import type { CacheRecord, Store } from './store/store.ts';
import type { DepOutput, RunContext, RunFlags } from './task.ts';

/** What we remember about a task between runs (for `why` and for reporting early cutoff). */
export interface TaskMemory {
  key: string;
  parts: KeyParts;
  outputHash: string;
}

/** Per-repo state kept between runs. */
export interface EngineState {
  tasks: Record<string, TaskMemory>;
  toolMemo: Record<string, string>;
}

export interface RebuilderOptions {
  root: string;
  config: Config;
  device: Device;
  store: Store;
  stat: StatCache;
  state: EngineState;
  flags: RunFlags;
  dryRun: boolean;
  emit: Emit;
  openDevice(): Promise<DeviceSession>;
  secrets(service: string, generate: boolean): Promise<Record<string, string>>;
  confirm(question: string): Promise<boolean>;
  /** How many steps may do work (run or restore) at once; checking keys and records is not limited by it. */
  concurrency: number;
}

interface TaskResult {
  outputHash: string;
  key?: string;
  files: DepOutput['files'];
  value?: unknown;
  materialised: boolean;
  /** --dry-run: this task would run, so its output is not known yet. */
  unknown?: boolean;
}

export const outDir = (root: string, svc: string) => join(root, '.sovereign', 'out', svc);
export const dataDir = (root: string, svc: string) => join(root, '.sovereign', 'data', svc);
export const tmpRoot = (root: string) => join(root, '.sovereign', 'tmp');

export class Rebuilder {
  private readonly results = new Map<string, TaskResult>();
  private readonly materialising = new Map<string, Promise<boolean>>();
  /** Tasks whose outputs must end up on disk: requested artifacts and what requested aggregates gather. */
  private readonly wanted = new Set<string>();
  /** Key parts of every task whose key was computed in this run (for `why`). */
  readonly parts = new Map<string, KeyParts>();
  private readonly slots: Semaphore;
  /** Keys being built right now: a second task with the same key (two services sharing a base) waits, then hits. */
  private readonly inflight = new Map<string, Promise<unknown>>();

  constructor(private readonly g: TaskGraph, private readonly o: RebuilderOptions) {
    this.slots = new Semaphore(o.concurrency);
    const want = (id: string) => {
      if (this.wanted.has(id)) return;
      this.wanted.add(id);
      const n = g.nodes.get(id)!;
      if (n.alias) want(n.alias);
      if (n.step.kind === 'aggregate') n.deps.forEach(want);
    };
    g.roots.forEach(want);
  }

  /** Brings one task up to date; its dependencies have already been executed. */
  async execute(id: string, signal: AbortSignal): Promise<void> {
    const node = this.g.nodes.get(id)!;
    const started = Date.now();
    const done = (outcome: Outcome, reason: string, extra: { cutoff?: boolean; bytes?: number } = {}) => {
      const r = this.results.get(id);
      this.o.emit({ type: 'done', task: id, outcome, reason, durationMs: Date.now() - started, key: r?.key, outputHash: r?.outputHash, ...extra });
    };
    try {
      if (node.alias) {
        this.results.set(id, this.result(node.alias));
        return done(this.result(node.alias).unknown ? 'would-run' : 'fresh', `same as ${node.alias}`);
      }
      const kind = node.step.kind;
      if (kind === 'aggregate') {
        const unknown = node.deps.some((d) => this.result(d).unknown);
        // Restoring may re-run a dependency with new output: hash after it.
        if (this.wanted.has(id) && !this.o.dryRun) await this.materialiseDeps(node, signal);
        this.results.set(id, { outputHash: sha256(canonicalJson(this.depHashes(node))), files: {}, materialised: true, unknown });
        return done(unknown ? 'would-run' : 'fresh', unknown ? 'a dependency will run' : 'all dependencies up to date');
      }
      if (kind === 'artifact') return await this.artifact(node, signal, done);
      if (kind === 'create-once') return await this.createOnce(node, signal, done);
      return await this.effect(node, signal, done);
    } catch (e) {
      if (e instanceof Cancelled || signal.aborted) { this.o.emit({ type: 'cancelled', task: id }); throw new Cancelled(); }
      const u = e instanceof UserError ? e : fromSystemError(e);
      const message = u ? u.message : `internal error (a bug in sovereign, please report it): ${String((e as Error)?.stack ?? e)}`;
      this.o.emit({ type: 'failed', task: id, message, hint: u?.hint, details: u?.details, durationMs: Date.now() - started, code: u ? u.code : 'bug' });
      throw u ?? e;
    }
  }

  private result(id: string): TaskResult {
    const r = this.results.get(id);
    if (!r) throw new Error(`bug: ${id} used before it was executed`);
    return r;
  }

  private depHashes(node: TaskNode): Record<string, string> {
    return Object.fromEntries(node.deps.map((d) => [d, this.result(d).outputHash]));
  }

  private async key(node: TaskNode): Promise<{ key: string; parts: KeyParts }> {
    const inputs = (await node.step.inputs?.(node.ctx)) ?? {};
    const parts = await keyParts(
      { stepName: node.step.name, version: node.step.version, kind: node.step.kind, device: node.ctx.device },
      inputs,
      this.depHashes(node),
      { root: this.o.root, stat: this.o.stat, toolMemo: this.o.state.toolMemo },
    );
    this.parts.set(node.id, parts);
    return { key: keyOf(parts), parts };
  }

  private whyRun(node: TaskNode, parts: KeyParts): string {
    if (this.o.flags.force) return 'forced (--force)';
    const before = this.o.state.tasks[node.id];
    if (!before) return 'no cached result';
    const changed = diffParts(before.parts, parts);
    return changed.length ? `changed: ${changed.join(', ')}` : 'no cached result for these inputs';
  }

  private async artifact(node: TaskNode, signal: AbortSignal, done: (o: Outcome, r: string, x?: { cutoff?: boolean }) => void) {
    const unknownDep = node.deps.find((d) => this.result(d).unknown);
    if (unknownDep) {
      this.results.set(node.id, { outputHash: '', files: {}, materialised: false, unknown: true });
      return done('would-run', `dependency ${unknownDep} will run`);
    }
    for (;;) {
      const { key, parts } = await this.key(node);
      const rec = this.o.flags.force ? undefined : await this.storedRecord(node, key);
      if (rec) {
        this.remember(node, key, parts, rec.outputHash);
        const files = this.filesOf(node, rec);
        this.results.set(node.id, { key, outputHash: rec.outputHash, files, value: rec.value, materialised: false });
        // A value output (an image) is only looked for when wanted: checking would run docker.
        if (await this.isPresent(node, rec, this.wanted.has(node.id) && !this.o.dryRun)) {
          this.results.get(node.id)!.materialised = true;
          return done('fresh', 'up to date');
        }
        if (!this.wanted.has(node.id) || this.o.dryRun) return done('cached', this.o.dryRun && this.wanted.has(node.id) ? 'would restore from the cache' : 'in the cache; not needed on disk');
        if (await this.materialise(node.id, signal)) continue; // restore failed and the re-run changed the output
        return done('restored', `restored from the ${this.o.store.name} cache`);
      }
      const reason = this.whyRun(node, parts);
      const same = this.inflight.get(key);
      if (same && !this.o.flags.force) {
        await same.catch(() => undefined);
        continue;
      }
      if (this.o.dryRun) {
        this.results.set(node.id, { key, outputHash: '', files: {}, materialised: false, unknown: true });
        return done('would-run', reason);
      }
      const previous = this.o.state.tasks[node.id]?.outputHash;
      // Registered before anything is awaited, so a second task with this key waits instead of building too.
      const work = (async () => ((await this.materialiseDeps(node, signal)) ? undefined : this.run(node, key, reason, signal)))();
      this.inflight.set(key, work);
      const out = await work.finally(() => this.inflight.delete(key));
      if (!out) continue; // a dependency had to re-run with new output: recompute the key
      this.remember(node, key, parts, out.outputHash);
      return done('ran', reason, { cutoff: previous === out.outputHash });
    }
  }

  /** Runs an artifact step into a temp dir, stores its outputs, then moves them into place. */
  private async run(node: TaskNode, key: string, reason: string, signal: AbortSignal): Promise<TaskResult> {
    return this.slots.with(() => this.runNow(node, key, reason, signal));
  }

  private async runNow(node: TaskNode, key: string, reason: string, signal: AbortSignal): Promise<TaskResult> {
    this.o.emit({ type: 'start', task: node.id, reason });
    const started = Date.now();
    const tmp = await this.tmpDir();
    try {
      const ret = await node.step.run!(this.context(node, key, tmp, outDir(this.o.root, node.service.name), signal));
      if (signal.aborted) throw new Cancelled();
      const files: CacheRecord['files'] = [];
      for (const name of node.step.outputs?.(node.ctx) ?? []) {
        const p = join(tmp, name);
        const st = await fs.stat(p).catch(() => undefined);
        if (!st) throw new UserError(`${node.id} did not produce ${name}`);
        const digest = await hashFile(p, (d, t) => this.o.emit({ type: 'progress', task: node.id, done: d, total: t, label: `hashing ${name}` }), st.size);
        // Only the exec bit: the umask of whoever built it must not change the output hash.
        files.push({ name, sha256: digest, size: st.size, mode: st.mode & 0o111 ? 0o755 : 0o644 });
      }
      const value = ret && 'value' in ret ? ret.value : undefined;
      const outputHash = outputHashOf(files, value);
      const record: CacheRecord = { schema: 1, key, task: node.id, files, value, outputHash, durationMs: Date.now() - started, tools: {}, createdAt: new Date().toISOString() };
      for (const f of files) await this.o.store.putBlob(f.sha256, join(tmp, f.name));
      const final = outDir(this.o.root, node.service.name);
      await fs.mkdir(final, { recursive: true });
      for (const f of files) {
        await renameDurable(join(tmp, f.name), join(final, f.name));
        await this.o.stat.remember(join(final, f.name), f.sha256);
      }
      // The record goes last: if anything above failed or was interrupted, nothing claims this key is done.
      await this.o.store.putRecord(record);
      const result: TaskResult = { key, outputHash, files: this.filesOf(node, record), value, materialised: true };
      this.results.set(node.id, result);
      return result;
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  /** The store's record for `key` when it fits the step (see recordMismatch); one that does not is evicted. */
  private async storedRecord(node: TaskNode, key: string): Promise<CacheRecord | undefined> {
    const rec = await this.o.store.getRecord(key);
    const why = rec && recordMismatch(rec, node.step.outputs?.(node.ctx) ?? [], node.step.valueShape?.bind(node.step));
    if (!why) return rec;
    this.o.emit({ type: 'warning', message: `${node.id}: the cached record ${why}; ignored and evicted, the step runs` });
    await this.o.store.evict?.(key);
    return undefined;
  }

  private filesOf(node: TaskNode, rec: CacheRecord): DepOutput['files'] {
    const dir = outDir(this.o.root, node.service.name);
    return Object.fromEntries(rec.files.map((f) => [f.name, { sha256: f.sha256, size: f.size, path: join(dir, f.name) }]));
  }

  private async isPresent(node: TaskNode, rec: CacheRecord, checkValue: boolean): Promise<boolean> {
    for (const f of rec.files) {
      if ((await this.o.stat.hashFile(join(outDir(this.o.root, node.service.name), f.name))) !== f.sha256) return false;
    }
    if (!node.step.present) return true;
    return checkValue && node.step.present(node.ctx, rec.value);
  }

  /**
   * Makes a task's outputs exist on disk (restore from the store, or re-run when the store cannot).
   * Resolves true when the task's output hash changed in the process (its dependents must re-key).
   */
  private materialise(id: string, signal: AbortSignal): Promise<boolean> {
    const r = this.results.get(id);
    if (!r || r.materialised) return Promise.resolve(false);
    let p = this.materialising.get(id);
    if (!p) {
      p = this.restoreOrRerun(id, signal).finally(() => this.materialising.delete(id));
      this.materialising.set(id, p);
    }
    return p;
  }

  private async materialiseDeps(node: TaskNode, signal: AbortSignal): Promise<boolean> {
    let changed = false;
    for (const d of node.deps) if (await this.materialise(d, signal)) changed = true;
    return changed;
  }

  private async restoreOrRerun(id: string, signal: AbortSignal): Promise<boolean> {
    const node = this.g.nodes.get(id)!;
    if (node.alias) {
      const changed = await this.materialise(node.alias, signal);
      this.results.set(id, this.result(node.alias));
      return changed;
    }
    if (node.step.kind !== 'artifact') return false; // aggregates, effects and data disks are in place once executed
    const started = Date.now();
    const r = this.result(id);
    const rec = await this.storedRecord(node, r.key!);
    let ok = !!rec;
    for (const f of rec?.files ?? []) {
      const dest = join(outDir(this.o.root, node.service.name), f.name);
      if ((await this.o.stat.hashFile(dest)) === f.sha256) continue;
      this.o.emit({ type: 'log', task: id, line: `restoring ${f.name} (${f.size} bytes) from the ${this.o.store.name} cache` });
      ok = await this.slots.with(() => this.o.store.fetchBlob(f.sha256, f.size, dest, (d, t) => this.o.emit({ type: 'progress', task: id, done: d, total: t, label: `restoring ${f.name}` })));
      if (!ok) break;
      await fs.chmod(dest, f.mode);
      await this.o.stat.remember(dest, f.sha256);
    }
    if (ok && rec && (!node.step.present || (await node.step.present(node.ctx, rec.value)))) {
      r.materialised = true;
      this.o.emit({ type: 'done', task: id, outcome: 'restored', reason: `needed by a dependent; restored from the ${this.o.store.name} cache`, durationMs: Date.now() - started, key: r.key, outputHash: r.outputHash });
      return false;
    }
    // Corrupt or missing blob, or a value output gone (image deleted): forget the record, run the step.
    if (rec && !ok) {
      this.o.emit({ type: 'warning', message: `${id}: cached output is missing or corrupt; evicted, re-running` });
      await this.o.store.evict?.(r.key!);
    }
    const before = r.outputHash;
    await this.materialiseDeps(node, signal);
    const { key, parts } = await this.key(node);
    const reason = rec && !ok ? 'cached output was corrupt' : 'output not present (needed by a dependent)';
    const out = await this.run(node, key, reason, signal);
    this.remember(node, key, parts, out.outputHash);
    this.o.emit({ type: 'done', task: id, outcome: 'ran', reason, durationMs: Date.now() - started, key, outputHash: out.outputHash, cutoff: out.outputHash === before });
    return out.outputHash !== before;
  }

  private async createOnce(node: TaskNode, signal: AbortSignal, done: (o: Outcome, r: string) => void) {
    const { key, parts } = await this.key(node);
    const dir = dataDir(this.o.root, node.service.name);
    const names = node.step.outputs?.(node.ctx) ?? [];
    const files = Object.fromEntries(names.map((n) => [n, { sha256: key, size: 0, path: join(dir, n) }]));
    // The output hash is the recipe (the key), never the content: user data changes as it is used.
    this.results.set(node.id, { key, outputHash: key, files, materialised: true });
    const present = (await Promise.all(names.map((n) => fs.access(join(dir, n)).then(() => true, () => false)))).every(Boolean);
    const before = this.o.state.tasks[node.id];
    if (present && !this.o.flags.freshData) {
      this.remember(node, key, parts, key);
      const note = before && before.key !== key ? ` (its settings changed: ${diffParts(before.parts, parts).join(', ')}; --fresh-data recreates it)` : '';
      return done('skipped', `exists; user data is never overwritten${note}`);
    }
    if (this.o.dryRun) return done('would-run', present ? '--fresh-data: would replace it (asks first)' : 'does not exist yet');
    if (present && !(await this.o.confirm(`Recreate ${names.join(', ')} of ${node.service.name} (the empty disk that deploys push) from scratch?`))) {
      throw new UserError(`not replacing ${node.service.name}'s data disk`, { hint: 'answer yes, or pass --yes in scripts' });
    }
    this.o.emit({ type: 'start', task: node.id, reason: present ? 'replacing (--fresh-data)' : 'does not exist yet' });
    const tmp = await this.tmpDir();
    try {
      await this.slots.with(() => node.step.run!(this.context(node, key, tmp, dir, signal)));
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
    this.remember(node, key, parts, key);
    done('ran', present ? 'replaced (--fresh-data)' : 'created');
  }

  private async effect(node: TaskNode, signal: AbortSignal, done: (o: Outcome, r: string, x?: { bytes?: number }) => void) {
    const unknownDep = node.deps.find((d) => this.result(d).unknown);
    if (unknownDep) {
      this.results.set(node.id, { key: '', outputHash: '', files: {}, materialised: true, unknown: true });
      return done('would-run', `dependency ${unknownDep} will run`);
    }
    let key: string;
    let parts: KeyParts;
    let reason = 'always runs';
    let ctx: RunContext;
    for (;;) {
      ({ key, parts } = await this.key(node));
      this.results.set(node.id, { key, outputHash: key, files: {}, materialised: true });
      ctx = this.context(node, key, '', '', signal);
      if (node.step.kind === 'effect') {
        const state = this.o.flags.force ? 'forced (--force)' : node.step.check ? await node.step.check(ctx) : 'no check';
        if (state === true) {
          this.remember(node, key, parts, key);
          return done('skipped', 'device already up to date');
        }
        reason = state;
      }
      if (this.o.dryRun) return done('would-run', reason);
      // Restoring may re-run a dependency with new output: then this effect's key and check change too.
      if (!(await this.materialiseDeps(node, signal))) break;
    }
    this.o.emit({ type: 'start', task: node.id, reason });
    const ret = await this.slots.with(async () => node.step.run?.(ctx));
    if (signal.aborted) throw new Cancelled();
    if (node.step.kind === 'effect') this.remember(node, key, parts, key);
    done('ran', ret && ret.note ? `${reason}; ${ret.note}` : reason, { bytes: ret ? ret.bytes : undefined });
  }

  /** True once this run changed what is remembered between runs (a no-op run leaves the state file unwritten). */
  stateChanged = false;

  private remember(node: TaskNode, key: string, parts: KeyParts, outputHash: string) {
    const before = this.o.state.tasks[node.id];
    // The key is the hash of its parts: same key, same parts.
    if (before?.key === key && before.outputHash === outputHash) return;
    this.stateChanged = true;
    this.o.state.tasks[node.id] = { key, parts, outputHash };
  }

  private async tmpDir(): Promise<string> {
    const dir = join(tmpRoot(this.o.root), randomBytes(6).toString('hex'));
    await fs.mkdir(dir, { recursive: true });
    return dir;
  }

  private context(node: TaskNode, key: string, tmp: string, finalDir: string, signal: AbortSignal): RunContext {
    const o = this.o;
    return {
      ...node.ctx,
      task: node.id,
      root: o.root,
      outDir: tmp,
      finalDir,
      key,
      signal,
      flags: o.flags,
      dep: (id) => {
        if (!node.deps.includes(id)) throw new Error(`bug: ${node.id} reads ${id}, which is not among its dependencies`);
        const r = this.result(id);
        return { task: id, outputHash: r.outputHash, files: r.files, value: r.value };
      },
      log: (line) => o.emit({ type: 'log', task: node.id, line, ...(node.step.answers ? { answer: true } : {}) }),
      progress: (d, total, label) => o.emit({ type: 'progress', task: node.id, done: d, total, label }),
      session: () => o.openDevice(),
      secrets: (opts) => o.secrets(node.service.name, !!opts?.generate),
      confirm: (q) => o.confirm(q),
    };
  }
}

/** Counts how many steps work at once. */
class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(n: number) { this.free = n; }
  async with<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); else this.free++;
    }
  }
}
