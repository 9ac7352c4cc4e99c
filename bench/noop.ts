// No-op benchmark: `sovereign run deploy` on a fully up-to-date repo, against a bare `node -e 0` started the same way,
// for the 3-service shape and generated 50/500/5000-service graphs (5000 services = 45,000 tasks). Prints ratios,
// per-service growth, and the 45,000-task no-op against its 2 s target.
// Usage: node --import tsx bench/noop.ts [--quick]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

function time(cmd: string, args: string[], cwd: string): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function measure(n: number, reps: number): { ms: number; baseline: number } {
  const root = makeProject(n);
  try {
    time(process.execPath, [child, 'run', 'deploy'], root); // cold: builds everything once
    time(process.execPath, [child, 'run', 'deploy'], root); // warm the OS cache
    const ours: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < reps; i++) {
      // Interleaved, so machine noise hits both alike.
      bare.push(time(process.execPath, ['-e', '0'], root));
      ours.push(time(process.execPath, [child, 'run', 'deploy'], root));
    }
    return { ms: median(ours), baseline: median(bare) };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const sizes: [number, number][] = quick ? [[3, 5], [50, 3], [500, 3]] : [[3, 15], [50, 7], [500, 5], [5000, 3]];
const rows: { n: number; ms: number; baseline: number }[] = [];
for (const [n, reps] of sizes) {
  const r = measure(n, reps);
  rows.push({ n, ...r });
  console.log(`${String(n).padStart(5)} services (${n * 9} tasks): no-op ${r.ms.toFixed(0)} ms, node -e 0 ${r.baseline.toFixed(0)} ms, ratio ${(r.ms / r.baseline).toFixed(2)}x`);
}
const three = rows[0];
console.log(`\n3-service no-op / bare node start: ${(three.ms / three.baseline).toFixed(2)}x (target: within 3x)`);
for (let i = 1; i + 1 < rows.length; i++) {
  const a = rows[i], b = rows[i + 1];
  const per = (r: typeof a) => (r.ms - three.ms) / (r.n - three.n);
  console.log(`growth ${a.n} -> ${b.n} services: ${(b.ms / a.ms).toFixed(1)}x time for ${(b.n / a.n).toFixed(0)}x services; per service ${per(a).toFixed(2)} ms -> ${per(b).toFixed(2)} ms (linear: about equal)`);
}
const big = rows.find((r) => r.n === 5000);
if (big) console.log(`45,000-task no-op: ${(big.ms / 1000).toFixed(2)} s (target: under 2 s on an unloaded 2-core machine), ${(big.ms / big.baseline).toFixed(1)}x node -e 0`);
if (three.ms / three.baseline > 3) process.exitCode = 1;
