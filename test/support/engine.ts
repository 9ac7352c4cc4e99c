// A throw-away project for engine tests: a temp dir, test steps, and run() called in-process.
import { mkdtempSync, promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../lib/config.ts';
import { run } from '../../lib/engine.ts';
import type { RunEvent } from '../../lib/events.ts';
import type { Step } from '../../lib/task.ts';
import { testConfig, testSteps } from './test-steps.ts';

export interface Project {
  root: string;
  config: Config;
  write(rel: string, text: string): Promise<void>;
  read(rel: string): string;
  /** Tasks that actually ran their step since the last call. */
  ran(): string[];
  run(targets: string[], opts?: Partial<{ force: boolean; dryRun: boolean; keepGoing: boolean; freshData: boolean; yes: boolean; steps: Map<string, Step> }>): Promise<{ ok: boolean; events: RunEvent[]; outcome: (task: string) => string | undefined }>;
  cleanup(): Promise<void>;
}

export async function project(services?: Record<string, Record<string, unknown>>): Promise<Project> {
  const root = mkdtempSync(join(tmpdir(), 'sovereign-engine-'));
  const config = testConfig(services);
  let seen = 0;
  const p: Project = {
    root,
    config,
    write: async (rel, text) => { await fs.mkdir(join(root, rel, '..'), { recursive: true }); await fs.writeFile(join(root, rel), text); },
    read: (rel) => readFileSync(join(root, rel), 'utf8'),
    ran: () => {
      let lines: string[] = [];
      try { lines = readFileSync(join(root, 'runs.log'), 'utf8').split('\n').filter(Boolean); } catch { /* none yet */ }
      const fresh = lines.slice(seen);
      seen = lines.length;
      return fresh;
    },
    async run(targets, opts = {}) {
      const events: RunEvent[] = [];
      const out = await run({
        root, config, steps: opts.steps ?? testSteps, targets,
        flags: { force: !!opts.force, freshData: !!opts.freshData, yes: !!opts.yes, verify: false, purge: false },
        dryRun: !!opts.dryRun, keepGoing: !!opts.keepGoing, concurrency: 2,
        emit: (e) => events.push(e), signal: new AbortController().signal, confirm: async () => !!opts.yes,
      });
      const outcome = (task: string) => {
        for (const e of events) {
          if (e.type === 'done' && e.task === task) return e.outcome;
          if ((e.type === 'failed' || e.type === 'cancelled' || e.type === 'blocked') && e.task === task) return e.type;
        }
        return undefined;
      };
      return { ok: out.ok, events, outcome };
    },
    cleanup: () => fs.rm(root, { recursive: true, force: true }),
  };
  await p.write('inputs/a.txt', 'hello a');
  await p.write('inputs/b.txt', 'hello b');
  return p;
}
