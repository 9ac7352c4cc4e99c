// What every command shares: its flags and their parsing, the repo and config it runs in, and asking the user.
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline/promises';
import type { Config } from '../config.ts';
import { didYouMean } from '../did-you-mean.ts';
import { UserError } from '../error.ts';
import type { Steps } from '../graph.ts';
import { findRoot, loadConfig } from '../load-config.ts';

export interface MainOptions {
  /** Step registry to use instead of tasks/ (for embedding sovereign and for benchmarks). */
  steps?: Steps;
}

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

export type RunParsed = { values: Record<string, string | boolean | undefined>; positionals: string[] };

/** Flags other tools (Turborepo) use for what sovereign does another way. */
const FOREIGN_FLAGS: Record<string, string> = {
  '--dry': 'use --dry-run',
  '--graph': 'the graph is a command of its own: sovereign graph <targets>',
  '--summarize': 'use --summary FILE (every run also writes .sovereign/runs/last.json)',
};

/** `command`: whose --help a mistyped flag's hint points to. */
export function parse(args: string[], command: string, extra: Record<string, { type: 'boolean' | 'string' }> = {}): RunParsed {
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

export async function context(override?: Steps): Promise<{ root: string; config: Config; steps: Steps }> {
  const root = await findRoot(process.cwd());
  if (!root) throw new UserError('no sovereign.config.ts here or in any parent folder', { code: 'config', hint: 'cd into your sovereign repo' });
  const [config, steps] = await Promise.all([loadConfig(root), override ?? import('../../tasks/index.ts').then((m) => m.steps)]);
  return { root, config, steps };
}

/** `--wait SECONDS`: how long to wait for another run's lock. */
export function waitSeconds(o: RunParsed): number | undefined {
  const wait = o.values.wait === undefined ? undefined : Number(o.values.wait);
  if (wait !== undefined && !(Number.isFinite(wait) && wait >= 0)) throw new UserError('--wait takes a number of seconds', { code: 'usage', hint: 'e.g. --wait 60' });
  return wait;
}

export async function confirm(question: string, yes: boolean): Promise<boolean> {
  if (yes) return true;
  if (!process.stdin.isTTY) throw new UserError(`${question} — refusing without confirmation in a non-interactive run`, { code: 'usage', hint: 'pass --yes to confirm in scripts' });
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}
