// One run: targets -> graph -> lock -> scheduler driving the rebuilder over the store; state saved at the end.
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import type { Config, Device } from './config.ts';
import type { DeviceSession } from './device/device.ts';
import { type ExitKind, UserError } from './error.ts';
import type { Emit } from './events.ts';
import { buildGraph, parseTargets, type Steps, type TaskGraph, topoOrder } from './graph.ts';
import { StatCache } from './hash.ts';
import { acquireLock } from './lock.ts';
import { markClean, sweep } from './sweep.ts';
import { EngineState, Rebuilder, tmpRoot } from './rebuild/index.ts';
import type { KeyParts } from './key.ts';
import { schedule } from './scheduler.ts';
import { openStore, type RemoteMode } from './store/open.ts';
import type { RunFlags } from './task.ts';

export interface RunRequest {
  root: string;
  config: Config;
  steps: Steps;
  targets: string[];
  device?: string;
  flags: RunFlags;
  dryRun: boolean;
  concurrency?: number;
  keepGoing: boolean;
  remoteCache?: RemoteMode;
  /** How long to wait for another run's lock (ms). */
  waitMs?: number;
  emit: Emit;
  signal: AbortSignal;
  confirm(question: string): Promise<boolean>;
}

export interface RunOutcome {
  ok: boolean;
  interrupted: boolean;
  failed: string[];
  graph: TaskGraph;
  /** Key parts computed in this dry run, by task (empty after a real run). */
  parts: Map<string, KeyParts>;
  /** The kind of the first failure (environment, config, …), for the exit code. */
  failure?: ExitKind;
}

export const stateDir = (root: string) => join(root, '.sovereign', 'state');

export function resolveDevice(config: Config, name?: string): Device {
  const device = config.devices.get(name ?? config.defaultDevice);
  if (!device) throw new UserError(`unknown device '${name}'`, { code: 'usage', hint: `devices: ${[...config.devices.keys()].join(', ')}` });
  return device;
}

/** Parses targets and builds their graph; throws UserError for unknown names and cycles. */
export function planGraph(config: Config, steps: Steps, targets: string[], device: Device): TaskGraph {
  const ids = parseTargets(targets, config, steps);
  if (!ids.ok) throw ids.error;
  const g = buildGraph(ids.value, config, device, steps);
  if (!g.ok) throw g.error;
  return g.value;
}

export const loadState = (root: string) => EngineState.load(stateDir(root));

export async function run(req: RunRequest): Promise<RunOutcome> {
  const started = Date.now();
  const device = resolveDevice(req.config, req.device);
  const graph = planGraph(req.config, req.steps, req.targets, device);
  const lock = req.dryRun ? undefined : await acquireLock(join(req.root, '.sovereign', 'lock'), {
    waitMs: req.waitMs ?? 10 * 60_000,
    onWait: (who) => req.emit({ type: 'warning', message: `waiting for another run to finish (${who})` }),
  });
  let session: Promise<DeviceSession> | undefined;
  let failure: ExitKind | undefined;
  const emit: Emit = (e) => {
    if (e.type === 'failed') failure ??= e.code;
    req.emit(e);
  };
  try {
    if (lock) await sweep(req.root, tmpRoot(req.root), resolve(req.root, req.config.cache.dir)); // leftovers of a killed run
    const state = loadState(req.root);
    const stat = new StatCache(join(stateDir(req.root), 'stat-cache.json'));
    const warned = new Set<string>();
    const store = await openStore(req.config, req.root, {
      mode: req.remoteCache,
      onWarning: (message) => { if (!warned.has(message)) { warned.add(message); emit({ type: 'warning', message }); } },
    });
    const workers = Math.max(1, req.concurrency ?? cpus().length);
    let secretsQueue: Promise<unknown> = Promise.resolve();
    const rebuilder = new Rebuilder(graph, {
      concurrency: workers,
      root: req.root, config: req.config, device, store, stat, state, flags: req.flags, dryRun: req.dryRun, emit,
      openDevice: () => (session ??= import('./device/session.ts').then((m) => m.openSession(device, req.root))),
      // One at a time: two services sharing a missing key must get the same generated value.
      secrets: (svc, generate) => (secretsQueue = secretsQueue.catch(() => undefined).then(async () => {
        const { values, generated } = await (await import('./secrets.ts')).ensureSecrets(req.config.services.get(svc)!, req.root, generate && !req.dryRun);
        if (generated.length) emit({ type: 'warning', message: `generated random ${generated.join(', ')} into .env for ${svc} (keep .env private; edit it to choose your own)` });
        return values;
      })) as Promise<Record<string, string>>,
      confirm: req.confirm,
    });
    emit({ type: 'plan', tasks: topoOrder(graph), device: device.name, dryRun: req.dryRun });
    const deviceResource = `device:${device.name}`;
    const result = await schedule(graph, {
      // Checking keys and records is I/O-bound: many at once. Doing work is limited by the rebuilder's slots.
      concurrency: Math.max(32, workers * 4),
      keepGoing: req.keepGoing,
      signal: req.signal,
      resource: (id) => (graph.nodes.get(id)!.step.usesDevice ? deviceResource : undefined),
      run: (id, signal) => rebuilder.execute(id, signal),
      onBlocked: (id, by, cause) => emit({ type: 'blocked', task: id, by, cause }),
    });
    if (!req.dryRun) {
      // Megabytes at thousands of tasks: written only when something changed.
      await state.save();
      await stat.save();
      await store.flush?.();
    }
    const interrupted = req.signal.aborted;
    const ok = result.failed.length === 0 && result.blocked.length === 0 && !interrupted && result.cancelled.length === 0;
    if (lock && ok) await markClean(req.root);
    emit({ type: 'end', ok, interrupted, durationMs: Date.now() - started });
    return { ok, interrupted, failed: result.failed, graph, parts: rebuilder.parts, failure };
  } finally {
    if (session) await session.then((s) => s.close(), () => undefined);
    await lock?.release();
  }
}
