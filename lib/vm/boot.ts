// Waiting for a booting VM: follows its console log incrementally until the ready marker, a failure marker, its death, or the timeout.
import { StringDecoder } from 'node:string_decoder';
import type { DeviceSession } from '../device/device.ts';
import { Cancelled, UserError } from '../error.ts';

export interface WaitForReadyOptions {
  session: DeviceSession;
  /** Device path of the console log. */
  log: string;
  /** Device path of the pid file (read when `pid` is not given). */
  pidFile: string;
  pid?: number;
  readyMarker: string;
  failureMarkers: string[];
  timeoutMs: number;
  /** The VM's display name, for messages (`timeout waiting for PostgreSQL (90s)`). */
  name: string;
  signal?: AbortSignal;
  /** Each complete console line as it arrives (blank lines included). */
  onLine?: (line: string) => void;
  /** Time between reads of the log (default 500 ms). */
  pollMs?: number;
}

export interface Ready {
  /** Milliseconds from the call to the ready marker. */
  ms: number;
  /** Bytes of console log read. */
  bytes: number;
}

/** How many console lines an error carries. */
const TAIL_LINES = 20;

/**
 * Resolves when `readyMarker` appears in the console log. Each poll reads only the bytes added since the
 * last one (`readFrom(log, offset)`), so a long log costs nothing extra. Lines are split on '\n' only
 * once complete; a marker in a line still being written counts at once.
 */
export async function waitForReady(o: WaitForReadyOptions): Promise<Ready> {
  const started = Date.now();
  const deadline = started + o.timeoutMs;
  const pollMs = o.pollMs ?? 500;
  const pid = o.pid ?? (await readPid(o.session, o.pidFile));
  const decoder = new StringDecoder('utf8');
  const tail: string[] = [];
  let offset = 0;
  let partial = '';

  /** Reads what is new; returns the marker found, if any. */
  const poll = async (): Promise<{ ready: true } | { failure: string } | undefined> => {
    const chunk = await o.session.readFrom(o.log, offset);
    offset += chunk.length;
    const lines = (partial + decoder.write(chunk)).split('\n');
    partial = lines.pop() ?? '';
    for (const raw of lines) {
      const line = raw.replace(/\r$/, '');
      o.onLine?.(line);
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      const hit = match(line);
      if (hit) return hit;
    }
    return match(partial);
  };
  const match = (line: string) => {
    const failure = o.failureMarkers.find((m) => m !== '' && line.includes(m));
    if (failure !== undefined) return { failure };
    return line.includes(o.readyMarker) ? ({ ready: true } as const) : undefined;
  };
  const details = () => (partial ? [...tail, partial] : tail).slice(-TAIL_LINES);

  for (;;) {
    if (o.signal?.aborted) throw new Cancelled();
    let hit = await poll();
    if (!hit && !(await o.session.isAlive(pid))) {
      hit = await poll(); // what it wrote just before it died
      if (!hit || 'ready' in hit) {
        throw new UserError(`${o.name}: VM process died during boot`, { details: details(), hint: 'the console log above shows how far it got' });
      }
    }
    if (hit && 'ready' in hit) return { ms: Date.now() - started, bytes: offset };
    if (hit) {
      throw new UserError(`${o.name}: VM boot failed ("${hit.failure}" in the console log)`, { details: details(), hint: 'see the console log lines above' });
    }
    if (Date.now() >= deadline) {
      throw new UserError(`timeout waiting for ${o.name} (${Math.round(o.timeoutMs / 1000)}s)`, {
        details: details(),
        hint: `the ready marker "${o.readyMarker}" never appeared; raise startTimeout or check the console log`,
      });
    }
    await sleep(Math.min(pollMs, Math.max(0, deadline - Date.now())), o.signal);
  }
}

async function readPid(session: DeviceSession, pidFile: string): Promise<number> {
  const text = (await session.readFile(pidFile))?.toString().trim() ?? '';
  const pid = Number(text);
  if (!Number.isInteger(pid) || pid <= 0) throw new UserError(`no VM pid in ${pidFile}`, { hint: 'the VM did not start; see its console log' });
  return pid;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => { signal?.removeEventListener('abort', onAbort); resolve(); };
    const timer = setTimeout(done, ms);
    const onAbort = () => { clearTimeout(timer); reject(new Cancelled()); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
