// Output as a user sees it: answers on a real terminal (a pseudo-terminal made by `script`), and a reader that goes away.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { bin, checkout } from './support/cli.ts';

const root = checkout();
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs the CLI with stdout and stderr on a pseudo-terminal, as in an interactive shell. */
function onTerminal(args: string[]): { code: number; out: string } {
  const cmd = [process.execPath, bin, ...args].map(quote).join(' ');
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', TERM: 'xterm' } });
  return { code: r.status ?? 1, out: r.stdout };
}

test('status, logs and test show their answer on a terminal, not only the task name', () => {
  const status = onTerminal(['status']);
  assert.is(status.code, 0, status.out);
  assert.match(status.out, /PostgreSQL: not running/);
  assert.match(status.out, /Forgejo: not running/);
  const logs = onTerminal(['logs', '--sql']);
  assert.match(logs.out, /PostgreSQL: no console log yet/);
  const t = onTerminal(['test', '--sql']);
  assert.is(t.code, 1);
  assert.match(t.out, /1\. VM process running: ✗ FAIL/);
});

test('status --json lists each task\'s answer as its output and as facts (running, ready), and records the command typed', () => {
  const r = spawnSync(process.execPath, [bin, 'status', '--sql', '--json'], { cwd: root, encoding: 'utf8' });
  const summary = JSON.parse(r.stdout);
  const sql = summary.tasks.find((t: { task: string }) => t.task === 'sql:status');
  assert.ok(sql.output.includes('PostgreSQL: not running'), r.stdout);
  assert.equal(sql.facts, { service: 'sql', running: false, ready: false }, r.stdout);
  assert.equal(summary.command, ['status', '--sql', '--json']);
});

test('a closed stdout ends output quietly: no EPIPE crash, the command keeps its exit code', () => {
  const alone = spawnSync(process.execPath, [bin, 'preflight'], { cwd: root, encoding: 'utf8' });
  const piped = spawnSync('bash', ['-c', `set -o pipefail; ${quote(process.execPath)} ${quote(bin)} preflight | head -1 >/dev/null; echo "exit=$?"`], { cwd: root, encoding: 'utf8' });
  assert.not.match(piped.stderr, /EPIPE|Unhandled/);
  assert.match(piped.stdout, new RegExp(`exit=${alone.status}`));
});

test('a run whose reader went away still finishes and saves its state', async () => {
  const last = join(root, '.sovereign', 'runs', 'last.json');
  rmSync(last, { force: true });
  const child = spawn(process.execPath, [bin, 'run', 'sql:status', 'sql:logs', 'forge:status', 'vault:status'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy(); // the reader closes before the first line
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const code = await new Promise((r) => child.on('close', r));
  assert.not.match(stderr, /EPIPE|Unhandled/);
  assert.is(code, 0, stderr);
  assert.ok(existsSync(last), 'last.json written');
  assert.is(JSON.parse(readFileSync(last, 'utf8')).ok, true);
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
