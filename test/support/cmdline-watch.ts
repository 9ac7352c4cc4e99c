// Test fixture: watches every process's argv (/proc/*/cmdline) for a string, to prove secrets never reach an argument list.
import { readdirSync, readFileSync } from 'node:fs';

export interface CmdlineWatch {
  /** Scans so far. */
  scans(): number;
  /** Stops and returns the command lines that contained the needle. */
  stop(): string[];
}

export function watchCmdlines(needle: string, everyMs = 1): CmdlineWatch {
  const hits: string[] = [];
  let scans = 0;
  const scan = () => {
    scans++;
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`).toString('utf8');
        if (argv.includes(needle)) hits.push(argv.replace(/\0/g, ' '));
      } catch { /* exited meanwhile */ }
    }
  };
  const timer = setInterval(scan, everyMs);
  return { scans: () => scans, stop: () => { clearInterval(timer); scan(); return hits; } };
}
