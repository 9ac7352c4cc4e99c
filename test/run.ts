// Runs every test/**/*.test.ts file in its own process (uvu), then prints one `N passed, N failed` line.
// Usage: node --import tsx test/run.ts [filter… | path/to/file.test.ts…]
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filters = process.argv.slice(2);

function find(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'support' || name === 'fixtures' ? [] : find(p);
    return name.endsWith('.test.ts') ? [p] : [];
  });
}

// A filter naming a test file runs that file even outside the usual set (the harness test runs a fixture that way).
const named = filters.filter((f) => f.endsWith('.test.ts') && existsSync(f)).map((f) => resolve(f));
const files = [...new Set([...named, ...find(join(root, 'test')).sort().filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))])];
let passed = 0;
let failed = 0;
for (const file of files) {
  const rel = relative(root, file);
  process.stdout.write(`\n# ${rel}\n`);
  const started = Date.now();
  const { code, out } = await new Promise<{ code: number; out: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', join(root, 'test', 'support', 'uvu-errors.ts'), file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    let out = '';
    child.stdout.on('data', (c) => { out += c; process.stdout.write(c); });
    child.stderr.on('data', (c) => { out += c; process.stderr.write(c); });
    child.on('close', (c) => resolve({ code: c ?? 1, out }));
  });
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0);
  passed += ok;
  // uvu counts skipped tests outside Total, so every test in Total that did not pass failed.
  const bad = Math.max(total - ok, code !== 0 && total === ok ? 1 : 0);
  failed += bad;
  process.stdout.write(`# ${rel}: ${ok} passed, ${bad} failed (${((Date.now() - started) / 1000).toFixed(1)}s)\n`);
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
