// The command line: parses words and flags, runs the engine, hands events to one reporter, maps errors to exit codes.
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Config } from './config.ts';
import { didYouMean, parseSize } from './config.ts';
import { EXIT, fromSystemError, UserError } from './error.ts';
import { killAllTools } from './exec.ts';
import type { Emit, RunEvent } from './events.ts';
import { run, loadState, planGraph, resolveDevice } from './engine.ts';
import { toDot, toMermaid, type Steps } from './graph.ts';
import { diffParts } from './key.ts';
import { findRoot, loadConfig } from './load-config.ts';
import { summaryCollector } from './report/summary.ts';
import { terminalReporter, useColor } from './report/terminal.ts';
import { writeFileAtomic } from './fsutil.ts';
import type { RemoteMode } from './store/open.ts';
import { LocalStore, localStore } from './store/local.ts';
import { acquireLock } from './lock.ts';
import { HELP, commandHelp } from './help.ts';

/** The original CLI's words: `sovereign build --sql` = `sovereign run sql:build`. */
const COMPAT = ['build', 'deploy', 'start', 'stop', 'test', 'remove', 'logs', 'status'];

const RUN_OPTIONS = {
  'dry-run': { type: 'boolean' },
  force: { type: 'boolean' },
  json: { type: 'boolean' },
  continue: { type: 'boolean' },
  concurrency: { type: 'string' },
  device: { type: 'string' },
  'fresh-data': { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  verify: { type: 'boolean' },
  purge: { type: 'boolean' },
  'remote-cache': { type: 'string' },
  summary: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  wait: { type: 'string' },
  'skip-preflight': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface MainOptions {
  /** Step registry to use instead of tasks/ (for embedding sovereign and for benchmarks). */
  steps?: Steps;
}

/**
 * A reader that goes away (`sovereign … | head -1`) ends output quietly, as git does: later writes are dropped and
 * the run goes on to finish and save its state; Node's default is to crash on the EPIPE error event.
 */
function survivesClosedOutput(stream: NodeJS.WriteStream): void {
  if (stream.listenerCount('error') > 0) return;
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
    stream.write = (() => true) as typeof stream.write;
  });
}

export async function main(argv: string[], opts: MainOptions = {}): Promise<number> {
  const [command, ...rest] = argv;
  survivesClosedOutput(process.stdout);
  survivesClosedOutput(process.stderr);
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(rest[0] ? commandHelp(rest[0]) : HELP);
      return EXIT.ok;
    }
    if (command === '--version' || command === '-V' || command === 'version' || rest.includes('--version')) {
      process.stdout.write('sovereign 0.1.0\n');
      return EXIT.ok;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(commandHelp(command));
      return EXIT.ok;
    }
    switch (command) {
      case 'run': return await runCommand(argv, opts, (o) => o.positionals);
      case 'why': return await whyCommand(rest, opts);
      case 'graph': return await graphCommand(rest, opts);
      case 'cache': return await cacheCommand(rest, opts);
      case 'hash': return await hashCommand(rest, opts);
      case 'preflight': return await preflightCommand(rest, opts);
      case 'autostart': {
        const o = parse(rest, { enable: { type: 'boolean' }, disable: { type: 'boolean' } });
        const { root, config } = await context(opts.steps);
        return await (await import('./cli-autostart.ts')).autostartCommand(o.values, root, config);
      }
      default:
        if (COMPAT.includes(command)) return await runCommand(argv, opts, (o, config) => compatTargets(command, o, config), true);
        throw new UserError(`unknown command '${command}'`, { code: 'usage', hint: hintFor(command, ['run', 'why', 'graph', 'cache', 'hash', 'preflight', 'autostart', ...COMPAT]) + ' — see sovereign --help' });
    }
  } catch (e) {
    return reportError(e, rest.includes('--json'));
  }
}

/** The error on stderr; with --json also as JSON on stdout, so a script always gets a document to parse. */
function reportError(err: unknown, json: boolean): number {
  const e = err instanceof UserError ? err : fromSystemError(err) ?? err;
  if (json) {
    const u = e instanceof UserError ? e : undefined;
    const error = u ? { message: u.message, kind: u.code, exitCode: EXIT[u.code], hint: u.hint, details: u.details } : { message: String((e as Error)?.message ?? e), kind: 'bug', exitCode: EXIT.bug };
    process.stdout.write(JSON.stringify({ ok: false, error }, null, 2) + '\n');
  }
  if (e instanceof UserError) {
    const color = useColor(process.stderr);
    process.stderr.write(`${color ? '\x1b[31merror\x1b[0m' : 'error'}: ${e.message}\n`);
    for (const l of e.details ?? []) process.stderr.write(`  │ ${l}\n`);
    if (e.hint) process.stderr.write(`  hint: ${e.hint}\n`);
    return EXIT[e.code];
  }
  process.stderr.write(`sovereign: internal error (a bug, please report it): ${(e as Error)?.stack ?? e}\n`);
  return EXIT.bug;
}

const hintFor = (word: string, names: string[]) => {
  const g = didYouMean(word, names);
  return g ? `did you mean '${g}'?` : `known: ${names.join(', ')}`;
};

async function context(override?: Steps): Promise<{ root: string; config: Config; steps: Steps }> {
  const root = await findRoot(process.cwd());
  if (!root) throw new UserError('no sovereign.config.ts here or in any parent folder', { code: 'config', hint: 'cd into your sovereign repo' });
  const [config, steps] = await Promise.all([loadConfig(root), override ?? import('../tasks/index.ts').then((m) => m.steps)]);
  return { root, config, steps };
}

type RunParsed = { values: Record<string, string | boolean | undefined>; positionals: string[] };

/** Flags other tools (Turborepo) use for what sovereign does another way. */
const FOREIGN_FLAGS: Record<string, string> = {
  '--dry': 'use --dry-run',
  '--graph': 'the graph is a command of its own: sovereign graph <targets>',
  '--summarize': 'use --summary FILE (every run also writes .sovereign/runs/last.json)',
};

function parse(args: string[], extra: Record<string, { type: 'boolean' | 'string' }> = {}, command = 'run'): RunParsed {
  const options = { ...RUN_OPTIONS, ...extra };
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true }) as RunParsed;
  } catch (e) {
    const flag = /Unknown option '([^']+)'/.exec((e as Error).message)?.[1]?.split('=')[0];
    const names = Object.keys(options).map((k) => `--${k}`);
    // A typo (--dryrun) or the start of a longer flag (--max for --max-size).
    const near = flag && (didYouMean(flag, names) ?? names.find((n) => n.startsWith(flag) && flag.length > 3));
    const guess = flag && (FOREIGN_FLAGS[flag] ?? (near ? `did you mean ${near}?` : undefined));
    throw new UserError((e as Error).message.replace(/\. To specify.*$/s, ''), { code: 'usage', hint: `${guess ? `${guess} — ` : ''}see sovereign ${command} --help` });
  }
}

/** `build --sql --forge` → sql:build, forge:build. */
function compatTargets(command: string, o: RunParsed, config: Config): string[] {
  const chosen = [...config.services.keys()].filter((s) => o.values[s]);
  if (o.positionals.length) {
    // A task id (sql:deploy) belongs to `run`; a bare service name becomes its flag.
    const hint = o.positionals.some((p) => p.includes(':')) ? `sovereign run ${o.positionals.join(' ')}` : `sovereign ${command} ${o.positionals.map((p) => `--${p}`).join(' ')}`;
    throw new UserError(`'${command}' takes service flags, not names: ${o.positionals.join(' ')}`, { code: 'usage', hint });
  }
  if (chosen.length === 0) {
    if (command === 'status') return [...config.services.keys()].map((s) => `${s}:status`);
    throw new UserError(`name the VMs to ${command}`, { code: 'usage', hint: `sovereign ${command} ${[...config.services.keys()].map((s) => `--${s}`).join(' ')} (one or more)` });
  }
  return chosen.map((s) => `${s}:${command}`);
}

async function runCommand([command, ...args]: string[], opts: MainOptions, targetsOf: (o: RunParsed, config: Config) => string[], compat = false): Promise<number> {
  const { root, config, steps } = await context(opts.steps);
  // Service flags (--sql, --forge, …) exist only once the config is known, and only for the original's words.
  const serviceFlags = Object.fromEntries([...config.services.keys()].map((s) => [s, { type: 'boolean' as const }]));
  const o = parse(args, compat ? serviceFlags : {});
  const targets = targetsOf(o, config);
  if (targets.length === 0) throw new UserError('no targets given', { code: 'usage', hint: 'e.g. sovereign run sql:build, or sovereign run deploy for every service' });
  const mode = o.values['remote-cache'] as string | undefined;
  if (mode !== undefined && !['off', 'read', 'read-write'].includes(mode)) throw new UserError(`--remote-cache must be off, read or read-write, not '${mode}'`, { code: 'usage' });
  const concurrency = o.values.concurrency === undefined ? undefined : Number(o.values.concurrency);
  if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency > 0)) throw new UserError('--concurrency takes a positive whole number', { code: 'usage' });
  const json = !!o.values.json;
  const wait = waitSeconds(o);

  const collector = summaryCollector([command, ...args]);
  const terminal = terminalReporter({ out: json ? process.stderr : process.stdout, color: useColor(json ? process.stderr : process.stdout), live: !json && !!process.stdout.isTTY, verbose: !!o.values.verbose });
  const emit: Emit = (e: RunEvent) => { collector.onEvent(e); if (!json || e.type === 'warning' || e.type === 'failed') terminal(e); };

  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++interrupts > 1) {
      killAllTools(); // tools run in their own process groups: the terminal's signal does not reach them
      process.exit(EXIT.interrupted);
    }
    process.stderr.write(`\n${sig}: stopping running tasks, removing partial outputs (again to force quit)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  try {
    const outcome = await run({
      root, config, steps, targets,
      device: o.values.device as string | undefined,
      flags: { force: !!o.values.force, freshData: !!o.values['fresh-data'], yes: !!o.values.yes, verify: !!o.values.verify, purge: !!o.values.purge },
      dryRun: !!o.values['dry-run'],
      concurrency,
      keepGoing: !!o.values.continue,
      remoteCache: mode as RemoteMode | undefined,
      waitMs: wait === undefined ? undefined : wait * 1000,
      emit,
      signal: controller.signal,
      confirm: (q) => confirm(q, !!o.values.yes),
    });
    const summary = collector.summary();
    // last.json is the last real run: a dry run changes nothing, that file included.
    if (!o.values['dry-run']) await writeFileAtomic(join(root, '.sovereign', 'runs', 'last.json'), JSON.stringify(summary, null, 2));
    if (o.values.summary) await writeFileAtomic(resolve(o.values.summary as string), JSON.stringify(summary, null, 2));
    if (json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
    return outcome.interrupted ? EXIT.interrupted : outcome.ok ? EXIT.ok : EXIT[outcome.failure ?? 'failed'];
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
}

/** `--wait SECONDS`: how long to wait for another run's lock. */
function waitSeconds(o: RunParsed): number | undefined {
  const wait = o.values.wait === undefined ? undefined : Number(o.values.wait);
  if (wait !== undefined && !(Number.isFinite(wait) && wait >= 0)) throw new UserError('--wait takes a number of seconds', { code: 'usage', hint: 'e.g. --wait 60' });
  return wait;
}

async function confirm(question: string, yes: boolean): Promise<boolean> {
  if (yes) return true;
  if (!process.stdin.isTTY) throw new UserError(`${question} — refusing without confirmation in a non-interactive run`, { code: 'usage', hint: 'pass --yes to confirm in scripts' });
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

async function whyCommand(args: string[], opts: MainOptions): Promise<number> {
  const o = parse(args);
  if (o.positionals.length !== 1) throw new UserError('why takes one task', { code: 'usage', hint: 'e.g. sovereign why sql:rootfs' });
  const { root, config, steps } = await context(opts.steps);
  const task = o.positionals[0];
  const before = loadState(root).tasks[task];
  // A dry run computes today's keys without doing anything.
  const keys = new Map<string, string>();
  const willRun = new Set<string>();
  const outcome = await run({
    root, config, steps, targets: [task], device: o.values.device as string | undefined, dryRun: true, keepGoing: true,
    flags: { force: false, freshData: false, yes: false, verify: false, purge: false },
    emit: (e) => {
      if (e.type !== 'done') return;
      if (e.key) keys.set(e.task, e.key);
      if (e.outcome === 'would-run') willRun.add(e.task);
    },
    signal: new AbortController().signal, confirm: async () => false,
  });
  const now = outcome.parts.get(task);
  const key = keys.get(task);
  const say = (text: string, data: Record<string, unknown>) => { process.stdout.write(o.values.json ? JSON.stringify({ task, ...data }, null, 2) + '\n' : text); return EXIT.ok; };
  if (!before) return say(`${task} has not run in this checkout yet.\n`, { state: 'never-run' });
  if (key === undefined) {
    const deps = outcome.graph.nodes.get(task)!.deps.filter((d) => willRun.has(d));
    return say(`${task} will run because ${deps.length === 1 ? 'its dependency' : 'its dependencies'} ${deps.join(', ')} will run first.\nRun \`sovereign why ${deps[0]}\` to see what changed there.\n`, { state: 'dependencies-will-run', dependencies: deps });
  }
  if (!now || before.key === key) return say(`${task} is up to date: no input changed since its last run (key ${before.key.slice(0, 12)}).\n`, { state: 'up-to-date', key: before.key });
  const changed = diffParts(before.parts, now);
  return say(`${task}: inputs changed since its last run:\n${changed.map((p) => `  - ${p}`).join('\n')}\n`, { state: 'changed', changed });
}

async function graphCommand(args: string[], opts: MainOptions): Promise<number> {
  const o = parse(args, { format: { type: 'string' } }, 'graph');
  const { config, steps } = await context(opts.steps);
  const format = (o.values.format as string | undefined) ?? 'dot';
  if (format !== 'dot' && format !== 'mermaid') throw new UserError(`--format must be dot or mermaid, not '${format}'`, { code: 'usage' });
  const targets = o.positionals.length ? o.positionals : [...steps.keys()];
  const g = planGraph(config, steps, targets, resolveDevice(config, o.values.device as string | undefined));
  const nodes = [...g.nodes.values()].map((n) => ({ task: n.id, kind: n.step.kind, deps: n.deps }));
  process.stdout.write((o.values.json ? JSON.stringify({ nodes }, null, 2) : format === 'dot' ? toDot(g) : toMermaid(g)) + '\n');
  return EXIT.ok;
}

async function hashCommand(args: string[], opts: MainOptions): Promise<number> {
  const o = parse(args);
  const { root, config, steps } = await context(opts.steps);
  const { inputHash } = await import('./inputs-hash.ts');
  const targets = o.positionals.length ? o.positionals : ['build'];
  const g = planGraph(config, steps, targets, resolveDevice(config, o.values.device as string | undefined));
  const hash = await inputHash(g, root);
  process.stdout.write((o.values.json ? JSON.stringify({ targets, hash }) : hash) + '\n');
  return EXIT.ok;
}

async function cacheCommand(args: string[], opts: MainOptions): Promise<number> {
  const o = parse(args, { 'max-size': { type: 'string' } }, 'cache');
  const [sub, file] = o.positionals;
  const { root, config } = await context(opts.steps);
  const store = localStore(config, root);
  const json = !!o.values.json;
  const wait = waitSeconds(o);
  // Commands that change the store wait for a running build (10 minutes unless --wait): gc must not delete what it is storing.
  const lock = ['gc', 'verify', 'import'].includes(sub)
    ? await acquireLock(join(root, '.sovereign', 'lock'), { waitMs: (wait ?? 600) * 1000, onWait: (who) => process.stderr.write(`waiting for another run to finish (${who})\n`) })
    : undefined;
  try {
    return await cacheSubcommand(sub, file, o, store, json);
  } finally {
    await lock?.release();
  }
}

async function cacheSubcommand(sub: string | undefined, file: string | undefined, o: RunParsed, store: LocalStore, json: boolean): Promise<number> {
  const out = (text: string, data: unknown) => process.stdout.write(json ? JSON.stringify(data, null, 2) + '\n' : text);
  switch (sub) {
    case 'ls': {
      const recs = (await store.listRecords()).sort((a, b) => a.task.localeCompare(b.task) || b.createdAt.localeCompare(a.createdAt));
      const size = (n: number) => (n > 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${n} B`);
      out(recs.map((r) => `${r.task.padEnd(24)} ${r.key.slice(0, 12)}  ${size(r.files.reduce((s, f) => s + f.size, 0)).padStart(10)}  ${r.createdAt}  ${r.files.map((f) => f.name).join(', ') || JSON.stringify(r.value)}`).join('\n') + (recs.length ? '\n' : 'the cache is empty\n'), recs);
      return EXIT.ok;
    }
    case 'verify': {
      const r = await store.verify();
      out(`${r.records} records, ${r.blobs} blobs checked; ${r.bad.length} corrupt${r.bad.length ? ' (evicted: their tasks will re-run)' : ''}\n`, r);
      return r.bad.length ? EXIT.failed : EXIT.ok;
    }
    case 'gc': {
      const text = o.values['max-size'] as string | undefined;
      if (text === undefined) throw new UserError('cache gc needs --max-size', { code: 'usage', hint: 'e.g. sovereign cache gc --max-size 5G' });
      const max = parseSize(text);
      if (max === undefined) throw new UserError(`--max-size '${text}' is not a size with a unit`, { code: 'usage', hint: 'e.g. --max-size 5G, 500M or 0B (units: B, K, M, G, T)' });
      // gc keeps the records that fit, newest first: it keeps none only when no record fits on its own.
      const recs = await store.listRecords();
      const empties = recs.length > 0 && recs.every((r) => r.files.reduce((n, f) => n + f.size, 0) > max);
      if (empties && !(await confirm(`--max-size ${text} removes all ${recs.length} records: empty the cache?`, !!o.values.yes))) {
        process.stderr.write('nothing removed\n');
        return EXIT.ok;
      }
      const r = await store.gc(max);
      out(`removed ${r.removedRecords} records, freed ${(r.freedBytes / (1 << 20)).toFixed(1)} MiB; the cache now holds ${(r.sizeBytes / (1 << 20)).toFixed(1)} MiB\n`, r);
      return EXIT.ok;
    }
    case 'export':
    case 'import': {
      if (!file) throw new UserError(`cache ${sub} needs a FILE`, { code: 'usage', hint: `sovereign cache ${sub} cache.tgz` });
      const archive = await import('./store/archive.ts');
      // The remote cache's signing key also signs (export) and checks (import) archives: no unsigned record gets in.
      const signatureKey = process.env.SOVEREIGN_REMOTE_CACHE_SIGNATURE_KEY || process.env.TURBO_REMOTE_CACHE_SIGNATURE_KEY || undefined;
      const r = sub === 'export' ? await archive.exportCache(store.dir, resolve(file), undefined, { signatureKey }) : await archive.importCache(store.dir, resolve(file), { signatureKey });
      out(`${sub}ed: ${JSON.stringify(r)}\n`, r);
      return EXIT.ok;
    }
    default:
      throw new UserError(sub ? `unknown cache command '${sub}'` : 'cache needs a command', { code: 'usage', hint: 'sovereign cache ls | verify | gc --max-size SIZE | export FILE | import FILE' });
  }
}

async function preflightCommand(args: string[], opts: MainOptions): Promise<number> {
  const o = parse(args);
  const { root, config } = await context(opts.steps);
  const device = resolveDevice(config, o.values.device as string | undefined);
  const { preflight } = await import('./preflight.ts');
  const checks = await preflight(config, device, { root });
  const color = useColor(process.stdout);
  if (o.values.json) process.stdout.write(JSON.stringify(checks, null, 2) + '\n');
  else for (const c of checks) {
    const mark = c.ok ? (color ? '\x1b[32m✓\x1b[0m' : '✓') : color ? '\x1b[31m✗\x1b[0m' : '✗';
    process.stdout.write(`${mark} ${c.name}${c.detail ? `: ${c.detail}` : ''}\n${!c.ok && c.fix ? `    fix: ${c.fix}\n` : ''}`);
  }
  return checks.every((c) => c.ok) ? EXIT.ok : EXIT.environment;
}

