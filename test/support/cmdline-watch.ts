// Test fixture: watches every process's argv (/proc/*/cmdline) for a string, to prove secrets never reach an argument list.
import { readdirSync, readFileSync } from 'node:fs';

export interface CmdlineWatch {
  /** Scans so far. */
  scans(): number;
  /** Stops and returns the command lines that contained the needle. */
  stop(): string[];
}

/** The secret as text and as base64 at each of the three byte alignments it could have inside a larger input. */
export function secretForms(secret: string): string[] {
  return [0, 1, 2].map((k) => Buffer.from('x'.repeat(k) + secret).toString('base64').slice(k ? 4 : 0, -4)).concat(secret);
}

/** Flags any process whose argv contains one of `needles`. */
export function watchCmdlines(needles: string | string[], everyMs = 1): CmdlineWatch {
  const list = typeof needles === 'string' ? [needles] : needles;
  const hits: string[] = [];
  let scans = 0;
  const scan = () => {
    scans++;
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`).toString('utf8');
        if (list.some((n) => argv.includes(n))) hits.push(argv.replace(/\0/g, ' '));
      } catch { /* exited meanwhile */ }
    }
  };
  const timer = setInterval(scan, everyMs);
  return { scans: () => scans, stop: () => { clearInterval(timer); scan(); return hits; } };
}
