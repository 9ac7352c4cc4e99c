// The terminal reporter: turns run events into lines, a live status line on a TTY, and a final summary.
import type { RunEvent } from '../events.ts';

export interface TerminalOptions {
  out: NodeJS.WriteStream;
  color: boolean;
  /** Redraw a live status line (TTY only). */
  live: boolean;
  /** Print task log lines as they come (otherwise only on failure). */
  verbose: boolean;
}

export const useColor = (stream: NodeJS.WriteStream) => !process.env.NO_COLOR && !!stream.isTTY && process.env.TERM !== 'dumb';

const ICON: Record<string, string> = { ran: '✓', fresh: '·', restored: '↓', cached: '·', skipped: '·', 'would-run': '▶' };
const LABEL: Record<string, string> = { ran: 'ran', fresh: 'up to date', restored: 'restored', cached: 'cached', skipped: 'skipped', 'would-run': 'would run' };

export function terminalReporter(o: TerminalOptions) {
  const paint = (code: number) => (s: string) => (o.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const [dim, red, green, yellow, bold] = [2, 31, 32, 33, 1].map(paint);
  const active = new Map<string, { label: string; pct?: number }>();
  const logs = new Map<string, string[]>();
  /** Last outcome of each task (a cached task may later be restored or re-run for a dependent). */
  const outcomes = new Map<string, string>();
  let total = 0;
  let dryRun = false;
  let finished = 0;
  let statusShown = false;
  let lastDraw = 0;

  const clear = () => { if (statusShown) { o.out.write('\r\x1b[2K'); statusShown = false; } };
  const print = (line: string) => { clear(); o.out.write(line + '\n'); draw(true); };
  const draw = (force = false) => {
    if (!o.live || active.size === 0) return;
    const now = Date.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    const parts = [...active].map(([t, a]) => `${t}${a.label ? ' ' + a.label : ''}${a.pct !== undefined ? ` ${a.pct}%` : ''}`);
    const line = `[${finished}/${total}] ${parts.join(' · ')}`;
    o.out.write(`\r\x1b[2K${dim(line.slice(0, (o.out.columns ?? 100) - 1))}`);
    statusShown = true;
  };
  const secs = (ms: number) => (ms >= 100 ? ` ${(ms / 1000).toFixed(1)}s` : '');

  return (e: RunEvent) => {
    switch (e.type) {
      case 'plan':
        total = e.tasks.length;
        dryRun = e.dryRun;
        print(dim(`sovereign: ${total} task${total === 1 ? '' : 's'} on device '${e.device}'${dryRun ? ' (dry run: nothing changes)' : ''}`));
        break;
      case 'start':
        active.set(e.task, { label: '' });
        print(`${yellow('▶')} ${e.task} ${dim(e.reason)}`);
        break;
      case 'log': {
        const buf = logs.get(e.task) ?? [];
        buf.push(e.line);
        if (buf.length > 20) buf.shift();
        logs.set(e.task, buf);
        if (e.answer || o.verbose || !o.live) print(dim(`  ${e.task} │ `) + e.line);
        else { const a = active.get(e.task); if (a) a.label = e.line.slice(0, 60); draw(); }
        break;
      }
      case 'progress': {
        const a = active.get(e.task) ?? { label: '' };
        a.label = e.label ?? a.label;
        const pct = e.total ? Math.floor((e.done / e.total) * 100) : undefined;
        if (!o.live && pct !== undefined && a.pct !== undefined && Math.floor(pct / 25) === Math.floor(a.pct / 25)) { a.pct = pct; break; }
        a.pct = pct;
        active.set(e.task, a);
        if (o.live) draw(); else if (pct !== undefined) print(dim(`  ${e.task} │ ${a.label} ${pct}%`));
        break;
      }
      case 'done': {
        active.delete(e.task);
        if (!outcomes.has(e.task)) finished++;
        outcomes.set(e.task, e.outcome);
        // Work done is always shown; what needed nothing only in a dry run (it is the plan) or with --verbose.
        const quiet = e.outcome === 'fresh' || e.outcome === 'cached' || e.outcome === 'skipped';
        if (quiet && !dryRun && !o.verbose) { draw(); break; }
        const icon = e.outcome === 'ran' ? green(ICON.ran) : ICON[e.outcome];
        const cutoff = e.cutoff ? dim(' (same output: dependents stay up to date)') : '';
        // A task that ran had its reason printed when it started.
        const reason = e.outcome === 'ran' || !e.reason ? '' : ` — ${e.reason}`;
        print(`${icon} ${quiet ? dim(e.task) : e.task} ${dim(LABEL[e.outcome] + secs(e.durationMs) + reason)}${cutoff}`);
        break;
      }
      case 'failed':
        active.delete(e.task);
        finished++;
        outcomes.set(e.task, 'failed');
        print(`${red('✗')} ${bold(e.task)} ${red('failed')}${secs(e.durationMs)}: ${e.message}`);
        for (const l of e.details ?? (o.verbose ? [] : logs.get(e.task)?.slice(-10)) ?? []) print(dim(`    │ ${l}`));
        if (e.hint) print(`    hint: ${e.hint}`);
        break;
      case 'cancelled':
        active.delete(e.task);
        outcomes.set(e.task, 'cancelled');
        print(`${yellow('■')} ${e.task} cancelled (nothing recorded)`);
        break;
      case 'blocked':
        outcomes.set(e.task, 'blocked');
        print(dim(`- ${e.task} not run: ${e.by} ${e.cause}`));
        break;
      case 'warning':
        print(`${yellow('warning:')} ${e.message}`);
        break;
      case 'end': {
        clear();
        const order = ['ran', 'restored', 'fresh', 'cached', 'skipped', 'would-run', 'failed', 'blocked', 'cancelled'];
        const counts: Record<string, number> = {};
        for (const x of outcomes.values()) counts[x] = (counts[x] ?? 0) + 1;
        const summary = order.filter((k) => counts[k]).map((k) => `${counts[k]} ${LABEL[k] ?? k}`).join(', ');
        const status = e.interrupted ? yellow('interrupted') : e.ok ? green('done') : red('failed');
        o.out.write(`${bold(status)} in ${(e.durationMs / 1000).toFixed(1)}s: ${summary || 'nothing to do'}\n`);
        break;
      }
    }
  };
}
