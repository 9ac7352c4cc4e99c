// Commands that look without changing anything: why (what changed), graph, hash (of the inputs), preflight.
import { diffParts } from '../key.ts';
import { loadState, planGraph, resolveDevice, run } from '../engine.ts';
import { EXIT, UserError } from '../error.ts';
import { toDot, toMermaid } from '../graph.ts';
import { useColor } from '../report/terminal.ts';
import { context, type MainOptions, parse } from './args.ts';

export async function whyCommand(args: string[], opts: MainOptions): Promise<number> {
  const o = parse(args, 'why');
  if (o.positionals.length !== 1) throw new UserError('why takes one task', { code: 'usage', hint: 'e.g. sovereign why sql:rootfs' });
  const { root, config, steps } = await context(opts.steps);
  const task = o.positionals[0];
  const state = loadState(root);
  const before = state.tasks[task];
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
  const beforeParts = state.partsOf(task);
  if (!beforeParts) return say(`${task}: inputs changed since its last run (key ${before.key.slice(0, 12)} -> ${key.slice(0, 12)}); which ones was not recorded.\n`, { state: 'changed', changed: [] });
  const changed = diffParts(beforeParts, now);
  return say(`${task}: inputs changed since its last run:\n${changed.map((p) => `  - ${p}`).join('\n')}\n`, { state: 'changed', changed });
}

export async function graphCommand(args: string[], opts: MainOptions): Promise<number> {
  const o = parse(args, 'graph', { format: { type: 'string' } });
  const { config, steps } = await context(opts.steps);
  const format = (o.values.format as string | undefined) ?? 'dot';
  if (format !== 'dot' && format !== 'mermaid') throw new UserError(`--format must be dot or mermaid, not '${format}'`, { code: 'usage' });
  const targets = o.positionals.length ? o.positionals : [...steps.keys()];
  const g = planGraph(config, steps, targets, resolveDevice(config, o.values.device as string | undefined));
  const nodes = [...g.nodes.values()].map((n) => ({ task: n.id, kind: n.step.kind, deps: n.deps }));
  process.stdout.write((o.values.json ? JSON.stringify({ nodes }, null, 2) : format === 'dot' ? toDot(g) : toMermaid(g)) + '\n');
  return EXIT.ok;
}

export async function hashCommand(args: string[], opts: MainOptions): Promise<number> {
  const o = parse(args, 'hash');
  const { root, config, steps } = await context(opts.steps);
  const { inputHash } = await import('../inputs-hash.ts');
  const targets = o.positionals.length ? o.positionals : ['build'];
  const g = planGraph(config, steps, targets, resolveDevice(config, o.values.device as string | undefined));
  const hash = await inputHash(g, root);
  process.stdout.write((o.values.json ? JSON.stringify({ targets, hash }) : hash) + '\n');
  return EXIT.ok;
}

export async function preflightCommand(args: string[], opts: MainOptions): Promise<number> {
  const o = parse(args, 'preflight');
  const { root, config } = await context(opts.steps);
  const device = resolveDevice(config, o.values.device as string | undefined);
  const { preflight } = await import('../preflight.ts');
  const checks = await preflight(config, device, { root });
  const color = useColor(process.stdout);
  if (o.values.json) process.stdout.write(JSON.stringify(checks, null, 2) + '\n');
  else for (const c of checks) {
    const mark = c.ok ? (color ? '\x1b[32m✓\x1b[0m' : '✓') : color ? '\x1b[31m✗\x1b[0m' : '✗';
    process.stdout.write(`${mark} ${c.name}${c.detail ? `: ${c.detail}` : ''}\n${!c.ok && c.fix ? `    fix: ${c.fix}\n` : ''}`);
  }
  return checks.every((c) => c.ok) ? EXIT.ok : EXIT.environment;
}

