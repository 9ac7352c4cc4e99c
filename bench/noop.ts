// No-op benchmark: `sovereign run deploy` on a fully up-to-date repo, against a bare `node -e 0` started the same way,
// for the 3-service shape and generated 50/500/5000-service graphs (5000 services = 45,000 tasks of 9 steps; the plan
// holds 35,002 of them, kernels being shared). Prints wall and CPU time (user + system: less at the mercy of other
// processes on a shared machine), ratios, per-service growth, and the 45,000-task no-op against its 2 s target.
// The steps are synthetic (bench/support/shape.mjs) but the pushes check and record through the real device session
// of the `local` device, so the device's manifests are read as a real deploy reads them.
// Usage: node --import tsx bench/noop.ts [--quick]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
// @ts-expect-error: plain JavaScript shared with the bench child
import { CPU_LINE } from './support/cpu.mjs';

const repo = join(import.meta.dirname, '..');
const child = join(repo, 'bench', 'support', 'noop-child.mjs');
const quick = process.argv.includes('--quick');

function makeProject(n: number): string {
  const root = mkdtempSync(join(tmpdir(), `sovereign-bench-${n}-`));
  mkdirSync(join(root, 'node_modules'));
  symlinkSync(repo, join(root, 'node_modules', 'sovereign'));
  const names = Array.from({ length: n }, (_, i) => (i === 0 ? 'sql' : `svc${i}`));
  const entries = names.map((name, i) => `    ${name}: {
      displayName: '${name}', guestIp: '10.${(i >> 8) & 255}.${i & 255}.2', ports: [${5000 + (i % 1000)}], readyMarker: 'ready',
      kernel: ${i === 0 ? "{ deb: 'linux-image-cloud-amd64' }" : "{ from: 'sql' }"}, memory: 512, secrets: ['DB_PASSWORD'],
    },`);
  writeFileSync(join(root, 'sovereign.config.ts'), `import { defineConfig } from 'sovereign';\nexport default defineConfig({\n  services: {\n${entries.join('\n')}\n  },\n});\n`);
  for (const name of names) {
    mkdirSync(join(root, 'vm', name), { recursive: true });
    writeFileSync(join(root, 'vm', name, 'Dockerfile'), 'FROM scratch\nCOPY init.sh /sbin/init.sh\n');
    writeFileSync(join(root, 'vm', name, 'init.sh'), `#!/bin/sh\necho ${name} ready\n`);
  }
  return root;
}

/** Wall and CPU ms of one run, and what it printed. */
function time(cmd: string, args: string[], cwd: string): { ms: number; cpu: number; out: string } {
  const t = process.hrtime.bigint();
  // A cold run at 5,000 services prints megabytes (one line per task that ran): past the default 1 MiB the child is killed.
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}: ${r.error ?? ''} ${r.stderr}`);
  const cpu = CPU_LINE.exec(String(r.stderr))?.[1];
  if (cpu === undefined) throw new Error(`${cmd} ${args.join(' ')} reported no CPU time`);
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, cpu: Number(cpu) / 1000, out: String(r.stdout) };
}
/** `node -e 0` that reports its CPU time the same way (a few lines of JavaScript more). */
const bareArgs = ['--input-type=module', '-e', `import { reportCpu } from ${JSON.stringify(pathToFileURL(join(repo, 'bench', 'support', 'cpu.mjs')).href)}; reportCpu();`];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Row { n: number; tasks: string; ms: number; baseline: number; cpu: number; baseCpu: number }

function measure(n: number, reps: number): Row {
  const root = makeProject(n);
  try {
    time(process.execPath, [child, 'run', 'deploy'], root); // cold: builds everything once
    const warm = time(process.execPath, [child, 'run', 'deploy'], root); // warm the OS cache
    const tasks = /sovereign: (\d+) tasks/.exec(warm.out)?.[1] ?? '?';
    const ours: ReturnType<typeof time>[] = [];
    const bare: ReturnType<typeof time>[] = [];
    for (let i = 0; i < reps; i++) {
      // Interleaved, so machine noise hits both alike.
      bare.push(time(process.execPath, bareArgs, root));
      ours.push(time(process.execPath, [child, 'run', 'deploy'], root));
    }
    return { n, tasks, ms: median(ours.map((r) => r.ms)), baseline: median(bare.map((r) => r.ms)), cpu: median(ours.map((r) => r.cpu)), baseCpu: median(bare.map((r) => r.cpu)) };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const sizes: [number, number][] = quick ? [[3, 5], [50, 3], [500, 3]] : [[3, 15], [50, 7], [500, 5], [5000, 3]];
const rows: Row[] = [];
for (const [n, reps] of sizes) {
  const r = measure(n, reps);
  rows.push(r);
  console.log(`${String(n).padStart(5)} services (${n * 9} tasks, ${r.tasks} planned): no-op ${r.ms.toFixed(0)} ms (CPU ${r.cpu.toFixed(0)} ms), node -e 0 ${r.baseline.toFixed(0)} ms (CPU ${r.baseCpu.toFixed(0)} ms), ratio ${(r.ms / r.baseline).toFixed(2)}x (CPU ${(r.cpu / r.baseCpu).toFixed(2)}x)`);
}
const three = rows[0];
console.log(`\n3-service no-op / bare node start: ${(three.ms / three.baseline).toFixed(2)}x wall, ${(three.cpu / three.baseCpu).toFixed(2)}x CPU (target: within 3x)`);
for (let i = 1; i + 1 < rows.length; i++) {
  const a = rows[i], b = rows[i + 1];
  const per = (r: Row, k: 'ms' | 'cpu') => (r[k] - three[k]) / (r.n - three.n);
  console.log(`growth ${a.n} -> ${b.n} services: ${(b.ms / a.ms).toFixed(1)}x time (${(b.cpu / a.cpu).toFixed(1)}x CPU) for ${(b.n / a.n).toFixed(0)}x services; per service ${per(a, 'ms').toFixed(2)} ms -> ${per(b, 'ms').toFixed(2)} ms, CPU ${per(a, 'cpu').toFixed(2)} ms -> ${per(b, 'cpu').toFixed(2)} ms (linear: about equal)`);
}
const big = rows.find((r) => r.n === 5000);
if (big) {
  const met = big.ms < 2000;
  console.log(`45,000-task no-op: ${(big.ms / 1000).toFixed(2)} s wall, ${(big.cpu / 1000).toFixed(2)} s CPU (target: under 2 s on an unloaded 2-core machine: ${met ? 'met' : 'NOT met'}), ${(big.ms / big.baseline).toFixed(1)}x node -e 0`);
  // Wall time over the target with CPU under it is the neighbours' load, not ours.
  if (!met && big.cpu >= 2000) process.exitCode = 1;
}
if (three.ms / three.baseline > 3) process.exitCode = 1;
