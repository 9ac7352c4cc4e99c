// What every step kind shares while a run executes: results so far, keys, run memory, step contexts, work slots.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Config, Device } from '../config.ts';
import type { DeviceSession } from '../device/device.ts';
import type { Emit, Outcome } from '../events.ts';
import type { StatCache } from '../hash.ts';
import type { TaskGraph, TaskNode } from '../graph.ts';
import { dictionary, diffParts, keyOf, keyParts, type KeyParts } from '../key.ts';
import type { Store } from '../store/store.ts';
import type { DepOutput, RunContext, RunFlags } from '../task.ts';
import type { EngineState } from './state.ts';

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

export interface TaskResult {
  outputHash: string;
  key?: string;
  files: DepOutput['files'];
  value?: unknown;
  materialised: boolean;
  /** --dry-run: this task would run, so its output is not known yet. */
  unknown?: boolean;
}

/** Reports how a task ended; each step kind calls it once. */
export type Done = (outcome: Outcome, reason: string, extra?: { cutoff?: boolean; bytes?: number }) => void;

export const outDir = (root: string, svc: string) => join(root, '.sovereign', 'out', svc);
export const dataDir = (root: string, svc: string) => join(root, '.sovereign', 'data', svc);
export const tmpRoot = (root: string) => join(root, '.sovereign', 'tmp');

export class RebuildCore {
  readonly results = new Map<string, TaskResult>();
  private readonly materialising = new Map<string, Promise<boolean>>();
  /** Tasks whose outputs must end up on disk: requested artifacts and what requested aggregates gather. */
  readonly wanted = new Set<string>();
  /** Key parts of every task whose key was computed in this dry run (for `why`); a real run keeps none (35,000 of
   * them at 5,000 services, all surviving to be copied by every garbage collection, for nothing). */
  readonly parts = new Map<string, KeyParts>();
  readonly slots: Semaphore;
  /** Keys being built right now: a second task with the same key (two services sharing a base) waits, then hits. */
  readonly inflight = new Map<string, Promise<unknown>>();

  /** `restoreArtifact` brings an executed artifact's outputs onto disk; true when its output hash changed. */
  constructor(
    readonly g: TaskGraph,
    readonly o: RebuilderOptions,
    private readonly restoreArtifact: (core: RebuildCore, node: TaskNode, signal: AbortSignal) => Promise<boolean>,
  ) {
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

  result(id: string): TaskResult {
    const r = this.results.get(id);
    if (!r) throw new Error(`bug: ${id} used before it was executed`);
    return r;
  }

  /** The first dependency that will run in a --dry-run (so this task's key is not known yet). */
  unknownDep(node: TaskNode): string | undefined {
    return node.deps.find((d) => this.result(d).unknown);
  }

  depHashes(node: TaskNode): Record<string, string> {
    const out = dictionary<string>(); // task ids as names: see keyParts
    for (const d of node.deps) out[d] = this.result(d).outputHash;
    return out;
  }

  async key(node: TaskNode): Promise<{ key: string; parts: KeyParts }> {
    const inputs = (await node.step.inputs?.(node.ctx)) ?? {};
    const parts = await keyParts(
      { stepName: node.step.name, version: node.step.version, kind: node.step.kind, device: node.ctx.device },
      inputs,
      this.depHashes(node),
      { root: this.o.root, stat: this.o.stat, toolMemo: this.o.state.toolMemo },
    );
    if (this.o.dryRun) this.parts.set(node.id, parts);
    return { key: keyOf(parts), parts };
  }

  private readonly outDirs = new Map<string, string>();
  /** Where a task's output `name` lives; each service's folder joined once (a no-op run asks per output of every
   * artifact). `name` is a plain file name: records whose names differ from the step's outputs are refused. */
  outPath(node: TaskNode, name: string): string {
    let dir = this.outDirs.get(node.service.name);
    if (dir === undefined) this.outDirs.set(node.service.name, (dir = outDir(this.o.root, node.service.name)));
    return `${dir}/${name}`;
  }

  whyRun(node: TaskNode, parts: KeyParts): string {
    if (this.o.flags.force) return 'forced (--force)';
    const before = this.o.state.tasks[node.id];
    if (!before) return 'no cached result';
    const beforeParts = this.o.state.partsOf(node.id);
    if (!beforeParts) return 'no cached result for these inputs';
    const changed = diffParts(beforeParts, parts);
    return changed.length ? `changed: ${changed.join(', ')}` : 'no cached result for these inputs';
  }

  /**
   * Makes a task's outputs exist on disk (restore from the store, or re-run when the store cannot).
   * Resolves true when the task's output hash changed in the process (its dependents must re-key).
   */
  materialise(id: string, signal: AbortSignal): Promise<boolean> {
    const r = this.results.get(id);
    if (!r || r.materialised) return Promise.resolve(false);
    let p = this.materialising.get(id);
    if (!p) {
      p = this.restoreOrRerun(id, signal).finally(() => this.materialising.delete(id));
      this.materialising.set(id, p);
    }
    return p;
  }

  async materialiseDeps(node: TaskNode, signal: AbortSignal): Promise<boolean> {
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
    return this.restoreArtifact(this, node, signal);
  }

  remember(node: TaskNode, key: string, parts: KeyParts, outputHash: string) {
    this.o.state.remember(node.id, key, parts, outputHash);
  }

  async tmpDir(): Promise<string> {
    const dir = join(tmpRoot(this.o.root), randomBytes(6).toString('hex'));
    await fs.mkdir(dir, { recursive: true });
    return dir;
  }

  context(node: TaskNode, key: string, tmp: string, finalDir: string, signal: AbortSignal): RunContext {
    const o = this.o;
    return {
      // Named, not spread: spreading the plan context into 15,000 fresh literals showed up in no-op profiles.
      service: node.ctx.service,
      config: node.ctx.config,
      device: node.ctx.device,
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
      facts: (facts) => o.emit({ type: 'facts', task: node.id, facts }),
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
