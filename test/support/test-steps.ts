// Small test steps that read and write real files, for engine tests (the lifecycle steps live in tasks/).
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig, type Config } from '../../lib/config.ts';
import type { Step } from '../../lib/task.ts';

/** Appends the task id to `<root>/runs.log` so tests can count what actually ran. */
async function mark(root: string, task: string) {
  await fs.appendFile(join(root, 'runs.log'), task + '\n');
}

/** gen: upper-cases `inputs/<svc>.txt` (trimmed) into gen.txt. Trailing spaces change its key, not its output. */
export const gen: Step = {
  name: 'gen', kind: 'artifact', version: 1, summary: 'test: generate',
  deps: () => [],
  inputs: (ctx) => ({ files: [{ file: `inputs/${ctx.service.name}.txt` }], config: { memory: ctx.service.memory } }),
  outputs: () => ['gen.txt'],
  async run(ctx) {
    await mark(ctx.root, ctx.task);
    const text = await fs.readFile(join(ctx.root, 'inputs', `${ctx.service.name}.txt`), 'utf8');
    await fs.writeFile(join(ctx.outDir, 'gen.txt'), text.trim().toUpperCase());
  },
};

/** pack: gen.txt + '!' into pack.txt. */
export const pack: Step = {
  name: 'pack', kind: 'artifact', version: 1, summary: 'test: pack',
  deps: (ctx) => [`${ctx.service.name}:gen`],
  outputs: () => ['pack.txt'],
  async run(ctx) {
    await mark(ctx.root, ctx.task);
    const text = await fs.readFile(ctx.dep(`${ctx.service.name}:gen`).files['gen.txt'].path, 'utf8');
    await fs.writeFile(join(ctx.outDir, 'pack.txt'), text + '!');
  },
};

/** slow: writes part of its output, then waits (long enough to be killed), then finishes. */
export const slow: Step = {
  name: 'slow', kind: 'artifact', version: 1, summary: 'test: slow',
  deps: () => [],
  outputs: () => ['slow.txt'],
  async run(ctx) {
    await mark(ctx.root, ctx.task);
    await fs.writeFile(join(ctx.outDir, 'slow.txt'), 'partial');
    await fs.writeFile(join(ctx.root, 'slow.started'), String(process.pid));
    const ms = Number(process.env.SLOW_MS ?? 1500);
    await new Promise((r, j) => {
      const t = setTimeout(r, ms);
      ctx.signal.addEventListener('abort', () => { clearTimeout(t); j(new Error('aborted')); });
    });
    await fs.appendFile(join(ctx.outDir, 'slow.txt'), ' complete');
  },
};

/** fail: always fails (for --continue and fail-fast tests). */
export const fail: Step = {
  name: 'fail', kind: 'artifact', version: 1, summary: 'test: fails',
  deps: () => [],
  outputs: () => ['never.txt'],
  async run() { throw new Error('boom'); },
};

/** full: fails like a write on a full disk. */
export const full: Step = {
  name: 'full', kind: 'artifact', version: 1, summary: 'test: disk full',
  deps: () => [],
  outputs: () => ['x'],
  async run(ctx) {
    throw Object.assign(new Error(`ENOSPC: no space left on device, write '${ctx.outDir}/x'`), { code: 'ENOSPC', path: `${ctx.outDir}/x` });
  },
};

/** bug: a plain programming error. */
export const bug: Step = {
  name: 'bug', kind: 'artifact', version: 1, summary: 'test: a bug',
  deps: () => [],
  outputs: () => ['x'],
  async run() { throw new TypeError("Cannot read properties of undefined (reading 'x')"); },
};

/** loop: a dependency cycle through dependsOn, for the cycle error. */
export const up: Step = {
  name: 'up', kind: 'effect', version: 1, summary: 'test: cycle through dependsOn',
  deps: (ctx) => ctx.service.dependsOn.map((d) => `${d}:up`),
  check: async () => true,
};

/** shared: inputs identical across services (like a debootstrap base): one build serves all. */
export const shared: Step = {
  name: 'shared', kind: 'artifact', version: 1, summary: 'test: same key for every service',
  deps: () => [],
  inputs: () => ({ config: { suite: 'bookworm' } }),
  outputs: () => ['shared.txt'],
  async run(ctx) {
    await mark(ctx.root, ctx.task);
    await new Promise((r) => setTimeout(r, 200));
    await fs.writeFile(join(ctx.outDir, 'shared.txt'), 'base');
  },
};

export const all: Step = { name: 'all', kind: 'aggregate', version: 1, summary: 'test: aggregate', deps: (ctx) => [`${ctx.service.name}:pack`] };

export const testSteps = new Map<string, Step>([gen, pack, slow, fail, up, all, shared, full, bug].map((s) => [s.name, s]));

export function testConfig(services: Record<string, Record<string, unknown>> = { a: {}, b: {} }): Config {
  const input = {
    services: Object.fromEntries(Object.entries(services).map(([name, extra], i) => [name, {
      displayName: name.toUpperCase(), guestIp: `10.0.0.${i + 2}`, ports: [], readyMarker: 'ready', kernel: { path: 'k' }, ...extra,
    }])),
  };
  const r = resolveConfig(input, 'sovereign.config.ts');
  if (!r.ok) throw r.error;
  return r.value;
}
