// `sovereign run` (and the original's words through it): flags to a run, Ctrl-C handling, the summary and --json.
import { join, resolve } from 'node:path';
import type { Config } from '../config.ts';
import { run } from '../engine.ts';
import { EXIT, UserError } from '../error.ts';
import type { Emit, RunEvent } from '../events.ts';
import { killAllTools } from '../exec.ts';
import { writeFileAtomic } from '../fsutil.ts';
import { summaryCollector } from '../report/summary.ts';
import { terminalReporter, useColor } from '../report/terminal.ts';
import type { RemoteMode } from '../store/open.ts';
import { confirm, context, type MainOptions, parse, type RunParsed, waitSeconds } from './args.ts';

export async function runCommand([command, ...args]: string[], opts: MainOptions, targetsOf: (o: RunParsed, config: Config) => string[], compat = false): Promise<number> {
  const { root, config, steps } = await context(opts.steps);
  // Service flags (--sql, --forge, …) exist only once the config is known, and only for the original's words.
  const serviceFlags = Object.fromEntries([...config.services.keys()].map((s) => [s, { type: 'boolean' as const }]));
  const o = parse(args, command, compat ? serviceFlags : {});
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
