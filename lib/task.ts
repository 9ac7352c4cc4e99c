// What a lifecycle step declares (tasks/ modules implement it); it knows nothing of scheduling or caching.
import type { Config, Device, Service } from './config.ts';
import type { DeviceSession } from './device/device.ts';

/**
 * artifact: cached by key, outputs are files and/or a value.
 * create-once: made if absent, never replaced without --fresh-data (user data).
 * effect: changes the device; `check` says whether the device already has the desired state.
 * aggregate: no work of its own; done when its dependencies are.
 * always: runs every time (stop, status, test, …).
 */
export type StepKind = 'artifact' | 'create-once' | 'effect' | 'aggregate' | 'always';

/** What a step sees when the graph is planned: no I/O here beyond reading config. */
export interface PlanContext {
  service: Service;
  config: Config;
  device: Device;
}

/** One input file or folder, relative to the repo root. */
export type FileInput =
  | { file: string; optional?: boolean }
  /** A folder, filtered by an ignore file in it (e.g. `.dockerignore` for a build context). */
  | { dir: string; ignoreFile?: string };

/** Everything besides dependency outputs that goes into the step's key. */
export interface KeyInputs {
  /** The resolved config fields the step reads; canonical JSON of this is hashed. */
  config?: unknown;
  files?: FileInput[];
  /** Tools whose version the output depends on (names known to lib/tools.ts). */
  tools?: string[];
}

export interface Step {
  name: string;
  kind: StepKind;
  /** Bump when the step's implementation changes its output: part of the key. */
  version: number;
  summary: string;
  /** Task ids (`svc:step`) this task needs, for the given service. */
  deps(ctx: PlanContext): string[];
  inputs?(ctx: PlanContext): KeyInputs | Promise<KeyInputs>;
  /** This task is another task under a second name (e.g. a kernel `{ from: 'sql' }`): same outputs, no work. */
  alias?(ctx: PlanContext): string | undefined;
  /** artifact / create-once: the files the step writes into `ctx.outDir`. */
  outputs?(ctx: PlanContext): string[];
  run?(ctx: RunContext): Promise<StepResult | void>;
  /** effect: resolves true when the device already has the desired state, else the reason it must run. */
  check?(ctx: RunContext): Promise<true | string>;
  /** artifact with a value output (an image id): whether it still exists where it lives; false re-runs the step when a dependent needs it. */
  present?(ctx: PlanContext, value: unknown): Promise<boolean>;
  /** artifact with a value output: whether a value has the step's shape (records from outside are refused otherwise). */
  valueShape?(value: unknown): boolean;
  /** effect/always steps that act on the device are serialised per device. */
  usesDevice?: boolean;
  /**
   * Its log lines are the command's answer (status, logs, test): reporters always show them, on a terminal too,
   * and the run summary (--json) lists them as the task's `output`. Other steps' log lines are shown only on failure or with --verbose.
   */
  answers?: boolean;
}

export interface StepResult {
  /** Non-file output (e.g. an image id); part of the output hash. */
  value?: unknown;
  /** Bytes this step moved (pushed to the device, downloaded), for the run summary. */
  bytes?: number;
  /** How the step went, when its reason alone does not say (e.g. why a push went in full): added to the reason. */
  note?: string;
}

/** A dependency's outputs, materialised on disk when a dependent runs. */
export interface DepOutput {
  task: string;
  outputHash: string;
  /** output file name -> identity, and its absolute path once materialised (always in `run`; not in `check`). */
  files: Record<string, { sha256: string; size: number; path: string }>;
  value?: unknown;
}

export interface RunFlags {
  force: boolean;
  freshData: boolean;
  yes: boolean;
  verify: boolean;
  purge: boolean;
}

export interface RunContext extends PlanContext {
  task: string;
  /** Absolute repo root (never hashed). */
  root: string;
  /** artifact / create-once: a fresh temp folder for outputs; the engine moves them into place on success. */
  outDir: string;
  /** Where this service's outputs live once done (absolute). */
  finalDir: string;
  dep(id: string): DepOutput;
  /** This task's key (hex). */
  key: string;
  signal: AbortSignal;
  flags: RunFlags;
  log(line: string): void;
  /** A step with `answers`: its answer as data, beside the lines it logs (the task's `facts` in the run summary). */
  facts(facts: Record<string, unknown>): void;
  progress(done: number, total?: number, label?: string): void;
  /** A session on the run's device (opened once per run, shared). `ctx.device` is the Device's config. */
  session(): Promise<DeviceSession>;
  /**
   * Values of the `.env` keys this service declares (parsed, never evaluated). With `generate`, missing
   * keys are first generated into `.env` (only the step that delivers secrets asks for that).
   */
  secrets(opts?: { generate?: boolean }): Promise<Record<string, string>>;
  /** Asks the user to confirm (honours --yes; fails in non-interactive runs without it). */
  confirm(question: string): Promise<boolean>;
}
