// The command line: dispatches a command's words to its module (lib/cli/), maps errors to exit codes and output.
import { EXIT, fromSystemError, UserError } from '../error.ts';
import { useColor } from '../report/terminal.ts';
import { HELP, commandHelp } from '../help.ts';
import { hintNames } from '../did-you-mean.ts';
import { context, type MainOptions, parse } from './args.ts';
import { cacheCommand } from './cache.ts';
import { COMPAT, compatTargets } from './compat.ts';
import { graphCommand, hashCommand, preflightCommand, whyCommand } from './inspect.ts';
import { runCommand } from './run.ts';
import { withSbin } from '../tools.ts';

export type { MainOptions } from './args.ts';

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

/** As in package.json. */
const VERSION = '0.1.0';

export async function main(argv: string[], opts: MainOptions = {}): Promise<number> {
  const [command, ...rest] = argv;
  survivesClosedOutput(process.stdout);
  survivesClosedOutput(process.stderr);
  process.env.PATH = withSbin();
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(rest[0] ? commandHelp(rest[0]) : HELP);
      return EXIT.ok;
    }
    if (command === '--version' || command === '-V' || command === 'version' || rest.includes('--version')) {
      process.stdout.write(argv.includes('--json') ? `${JSON.stringify({ version: VERSION })}\n` : `sovereign ${VERSION}\n`);
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
        const o = parse(rest, 'autostart', { enable: { type: 'boolean' }, disable: { type: 'boolean' } });
        const { root, config } = await context(opts.steps);
        return await (await import('./autostart.ts')).autostartCommand(o.values, root, config);
      }
      default:
        if (COMPAT.includes(command)) return await runCommand(argv, opts, (o, config) => compatTargets(command, o, config), true);
        throw new UserError(`unknown command '${command}'`, { code: 'usage', hint: hintNames(command, ['run', 'why', 'graph', 'cache', 'hash', 'preflight', 'autostart', ...COMPAT]) + ' — see sovereign --help' });
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
