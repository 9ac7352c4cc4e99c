// Every command that prints information takes --json and prints one valid JSON document on stdout, on failure too.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processStart } from '../lib/lock.ts';
import { checkout, sovereign } from './support/cli.ts';

const root = checkout('sovereign-json-');
/** Expected exit codes: preflight's depends on this machine (0 with a docker daemon, 4 without). */
const cases: [string[], number | number[]][] = [
  [['run', 'sql:status', '--json'], 0],
  [['status', '--json'], 0],
  [['run', 'sql:build', '--dry-run', '--json'], 0],
  [['why', 'sql:status', '--json'], 0],
  [['graph', 'sql:build', '--json'], 0],
  [['hash', 'sql:build', '--json'], 0],
  [['cache', 'ls', '--json'], 0],
  [['cache', 'verify', '--json'], 0],
  [['cache', 'gc', '--max-size', '1G', '--json'], 0],
  [['run', 'nosuch', '--json'], 2],
  [['graph', 'sql:nosuch', '--json'], 2],
  [['cache', 'gc', '--max-size', 'banana', '--json'], 2],
  [['preflight', '--json'], [0, 4]],
  [['logs', '--sql', '--json'], 0],
  [['test', '--sql', '--json'], 1],
  [['why', 'nosuch:x', '--json'], 2],
  [['hash', 'sql:nosuch', '--json'], 2],
  [['cache', 'import', 'nosuch.tgz', '--json'], 2],
  [['cache', 'export', 'cache.tgz', '--json'], 0],
  [['version', '--json'], 0],
  [['status', '--nosuch', '--json'], 2],
  [['autostart', '--json'], 2],
];

test('each command\'s --json is valid JSON on stdout, with the exit code kept', async () => {
  const results = await Promise.all(cases.map(([args]) => sovereign(args, { cwd: root })));
  for (const [i, [args, code]] of cases.entries()) {
    const r = results[i];
    const name = args.join(' ');
    assert.ok(([] as number[]).concat(code).includes(r.code), `${name}: exit ${r.code}: ${r.stderr}`);
    checkDocument(name, r.stdout, r.code);
  }
  const graph = JSON.parse(results[4].stdout) as { nodes: { task: string; deps: string[] }[] };
  assert.ok(graph.nodes.some((n) => n.task === 'sql:rootfs' && n.deps.includes('sql:image')));
  assert.match(JSON.parse(results[5].stdout).hash, /^[0-9a-f]{64}$/);
});

/** One JSON document; on failure `ok: false` with the exit code in `error` (or, for a run whose task failed, in its summary). */
function checkDocument(name: string, stdout: string, code: number): void {
  let doc: unknown;
  try { doc = JSON.parse(stdout); } catch { assert.unreachable(`${name}: stdout is not JSON: ${stdout.slice(0, 200)}`); }
  if (code === 0 || name.startsWith('preflight')) return;
  const e = doc as { ok: boolean; error?: { message: string; exitCode: number }; tasks?: { outcome: string }[] };
  assert.is(e.ok, false, name);
  if (e.error) {
    assert.is(e.error.exitCode, code, name);
    assert.ok(e.error.message, name);
  } else {
    assert.ok(e.tasks?.some((t) => t.outcome === 'failed'), `${name}: a failed run's summary names the failed task`);
  }
}

test('--json on a locked repo (exit 5) and an invalid config (exit 3) is a JSON error too', async () => {
  // A live holder: this test's own process.
  mkdirSync(join(root, '.sovereign'), { recursive: true });
  writeFileSync(join(root, '.sovereign', 'lock'), JSON.stringify({ pid: process.pid, since: 'now', token: 'json-test', start: processStart(process.pid) }));
  // export too: it stages in the cache's tmp folder, which a run's sweep empties.
  for (const args of [['run', 'sql:status', '--json', '--wait', '0'], ['cache', 'gc', '--max-size', '1G', '--json', '--wait', '0'], ['cache', 'export', 'x.tgz', '--json', '--wait', '0']]) {
    const r = await sovereign(args, { cwd: root });
    assert.is(r.code, 5, `${args.join(' ')}: ${r.stderr}`);
    checkDocument(args.join(' '), r.stdout, 5);
  }
  rmSync(join(root, '.sovereign', 'lock'));
  writeFileSync(join(root, 'sovereign.config.ts'), 'export default 42;\n');
  for (const args of [['status', '--json'], ['graph', 'build', '--json'], ['hash', 'build', '--json'], ['why', 'sql:build', '--json']]) {
    const r = await sovereign(args, { cwd: root });
    assert.is(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
    checkDocument(args.join(' '), r.stdout, 3);
  }
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
