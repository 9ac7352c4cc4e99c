// Every command that prints information takes --json and prints one valid JSON document on stdout, on failure too.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { checkout, sovereign } from './support/cli.ts';

const root = checkout('sovereign-json-');
const cases: [string[], number][] = [
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
];

test('each command\'s --json is valid JSON on stdout, with the exit code kept', async () => {
  const results = await Promise.all(cases.map(([args]) => sovereign(args, { cwd: root })));
  for (const [i, [args, code]] of cases.entries()) {
    const r = results[i];
    const name = args.join(' ');
    assert.is(r.code, code, `${name}: ${r.stderr}`);
    let doc: unknown;
    try { doc = JSON.parse(r.stdout); } catch { assert.unreachable(`${name}: stdout is not JSON: ${r.stdout.slice(0, 200)}`); }
    if (code !== 0) {
      const e = (doc as { ok: boolean; error: { message: string; exitCode: number } });
      assert.is(e.ok, false, name);
      assert.is(e.error.exitCode, code, name);
      assert.ok(e.error.message, name);
    }
  }
  const graph = JSON.parse(results[4].stdout) as { nodes: { task: string; deps: string[] }[] };
  assert.ok(graph.nodes.some((n) => n.task === 'sql:rootfs' && n.deps.includes('sql:image')));
  assert.match(JSON.parse(results[5].stdout).hash, /^[0-9a-f]{64}$/);
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
