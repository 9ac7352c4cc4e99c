// The original Go CLI's words (`sovereign build --sql`), kept working as `run` over `<service>:<word>` targets.
import type { Config } from '../config.ts';
import { UserError } from '../error.ts';
import type { RunParsed } from './args.ts';

/** The original CLI's words: `sovereign build --sql` = `sovereign run sql:build`. */
export const COMPAT = ['build', 'deploy', 'start', 'stop', 'test', 'remove', 'logs', 'status'];

/** `build --sql --forge` → sql:build, forge:build. */
export function compatTargets(command: string, o: RunParsed, config: Config): string[] {
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
