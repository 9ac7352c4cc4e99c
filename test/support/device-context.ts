// Test fixture: a RunContext for device steps (push, chmod) without the engine: deps, flags and secrets given by the test.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { resolveConfig } from '../../lib/config.ts';
import type { Device, Service } from '../../lib/config.ts';
import type { DeviceSession } from '../../lib/device/device.ts';
import type { DepOutput, RunContext, RunFlags, Step } from '../../lib/task.ts';

/** A resolved service `sql` declaring `secrets`. */
export function testService(secrets: string[] = []): Service {
  const r = resolveConfig({ services: { sql: { displayName: 'PostgreSQL', guestIp: '192.168.100.2', ports: [5432], readyMarker: 'ready', kernel: { path: 'kernel' }, secrets } } }, 'test.config.ts');
  if (!r.ok) throw r.error;
  return r.value.services.get('sql')!;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** A dependency output holding one file, as the engine hands it to a dependent. */
export async function fileDep(task: string, name: string, path: string): Promise<DepOutput> {
  const { size } = await fs.stat(path);
  const sha256 = await sha256File(path);
  return { task, outputHash: sha256, files: { [name]: { sha256, size, path } } };
}

export interface FakeContext {
  ctx: RunContext;
  logs: string[];
  progress: Array<[number, number | undefined]>;
  questions: string[];
}

export function fakeContext(o: {
  step: Step;
  service: Service;
  device: Device;
  session: DeviceSession;
  root: string;
  deps?: DepOutput[];
  flags?: Partial<RunFlags>;
  secrets?: Record<string, string>;
  confirm?: boolean;
  signal?: AbortSignal;
}): FakeContext {
  const logs: string[] = [];
  const progress: Array<[number, number | undefined]> = [];
  const questions: string[] = [];
  const deps = new Map((o.deps ?? []).map((d) => [d.task, d]));
  const ctx = {
    service: o.service,
    config: undefined as unknown as RunContext['config'],
    task: `${o.service.name}:${o.step.name}`,
    root: o.root,
    outDir: '',
    finalDir: '',
    key: '0'.repeat(64),
    signal: o.signal ?? new AbortController().signal,
    flags: { force: false, freshData: false, yes: false, verify: false, purge: false, ...o.flags },
    dep(id: string) {
      const d = deps.get(id);
      if (!d) throw new Error(`test context has no dependency ${id}`);
      return d;
    },
    log: (l: string) => logs.push(l),
    facts: () => {},
    progress: (done: number, total?: number) => progress.push([done, total]),
    device: o.device,
    session: async () => o.session,
    secrets: async () => o.secrets ?? {},
    confirm: async (q: string) => { questions.push(q); return o.confirm ?? false; },
  };
  const typed: RunContext = ctx;
  return { ctx: typed, logs, progress, questions };
}

/** `session`, recording every device file it is asked to sha256 (to show a --verify leaves some file alone). */
export function hashSpy(session: DeviceSession): { session: DeviceSession; hashed: string[] } {
  const hashed: string[] = [];
  return { session: { ...session, sha256: (p: string) => { hashed.push(p); return session.sha256(p); } }, hashed };
}
