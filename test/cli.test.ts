// The command line as users meet it: help, errors with hints and exit codes, graph output, dry runs, NO_COLOR.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkout, sovereign } from './support/cli.ts';

const root = checkout();
const run = (args: string[], env?: Record<string, string>) => sovereign(args, { cwd: root, env });

test('--help for every command teaches, with examples', async () => {
  const top = await run(['--help']);
  assert.is(top.code, 0);
  for (const word of ['run', 'why', 'graph', 'cache', 'hash', 'preflight', 'build', 'status', 'Exit codes']) assert.ok(top.stdout.includes(word), word);
  for (const cmd of ['run', 'why', 'graph', 'cache', 'hash', 'preflight', 'build', 'deploy', 'start', 'stop', 'test', 'remove', 'status']) {
    const r = await run([cmd, '--help']);
    assert.is(r.code, 0, cmd);
    assert.match(r.stdout, new RegExp(`Usage: sovereign ${cmd}`), cmd);
  }
});

test('unknown command and unknown task: exit 2, did-you-mean', async () => {
  const a = await run(['biuld']);
  assert.is(a.code, 2);
  assert.match(a.stderr, /unknown command 'biuld'/);
  assert.match(a.stderr, /did you mean 'build'\?/);
  const b = await run(['run', 'sql:rootsf']);
  assert.is(b.code, 2);
  assert.match(b.stderr, /unknown step 'rootsf' in 'sql:rootsf'/);
  assert.match(b.stderr, /did you mean 'sql:rootfs'\?/);
  const c = await run(['run', 'sqll:build']);
  assert.is(c.code, 2);
  assert.match(c.stderr, /did you mean 'sql'\?/);
  const d = await run(['run', 'sql:build', '--frce']);
  assert.is(d.code, 2);
  assert.match(d.stderr, /--frce/);
});

test('original words: service flags required, mapped onto tasks', async () => {
  const r = await run(['build']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /--sql --forge --vault/);
  const dry = await run(['build', '--sql', '--forge', '--dry-run', '--json']);
  const summary = JSON.parse(dry.stdout);
  const tasks = summary.tasks.map((t: { task: string }) => t.task);
  assert.ok(tasks.includes('sql:build') && tasks.includes('forge:build'), tasks.join(' '));
  assert.not.ok(tasks.some((t: string) => t.startsWith('vault:')));
});

test('--dry-run of forge:deploy lists sql:kernel and no other sql task', async () => {
  const r = await run(['run', 'forge:deploy', '--dry-run', '--json']);
  assert.is(r.code, 0, r.stderr);
  const tasks: { task: string; outcome: string; reason: string }[] = JSON.parse(r.stdout).tasks;
  assert.equal(tasks.filter((t) => t.task.startsWith('sql:')).map((t) => t.task), ['sql:kernel']);
  const rootfs = tasks.find((t) => t.task === 'forge:rootfs')!;
  assert.is(rootfs.outcome, 'would-run');
  assert.ok(rootfs.reason.length > 0);
  // the plain-text plan says the same
  const text = await run(['run', 'forge:deploy', '--dry-run']);
  assert.match(text.stdout, /sql:kernel/);
  assert.match(text.stdout, /would run/);
});

test('graph prints DOT and Mermaid', async () => {
  const dot = await run(['graph', 'forge:deploy']);
  assert.is(dot.code, 0, dot.stderr);
  assert.match(dot.stdout, /^digraph sovereign \{/);
  assert.match(dot.stdout, /"forge:kernel" -> "sql:kernel"/);
  const mm = await run(['graph', 'forge:deploy', '--format', 'mermaid']);
  assert.match(mm.stdout, /^graph LR/);
  assert.match(mm.stdout, /forge_kernel --> sql_kernel/);
  const bad = await run(['graph', '--format', 'png']);
  assert.is(bad.code, 2);
});

test('invalid config: exit 3, names the file, the field and what is wrong', async () => {
  const broken = checkout('sovereign-badconfig-', `import { defineConfig } from 'sovereign';
export default defineConfig({ services: { sql: { displayName: 'PostgreSQL', guestIp: '192.168.100.999', ports: [5432], readyMarker: 'x', kernel: { from: 'sqll' }, memroy: 5 } } } as any);
`);
  const r = await sovereign(['run', 'sql:build'], { cwd: broken });
  assert.is(r.code, 3);
  assert.match(r.stderr, /invalid config in sovereign\.config\.ts/);
  assert.match(r.stderr, /services\.sql\.guestIp: is not an IPv4 address/);
  assert.match(r.stderr, /services\.sql\.memroy: is not a known field \(hint: did you mean 'memory'\?\)/);
  assert.match(r.stderr, /services\.sql\.kernel\.from: names unknown service 'sqll'/);
  writeFileSync(join(broken, 'sovereign.config.ts'), 'export default {{');
  const syntax = await sovereign(['run', 'sql:build'], { cwd: broken });
  assert.is(syntax.code, 3);
  assert.match(syntax.stderr, /sovereign\.config\.ts:1:\d+/);
  rmSync(broken, { recursive: true, force: true });
});

test('NO_COLOR: no escape codes anywhere', async () => {
  const r = await run(['run', 'forge:deploy', '--dry-run'], { NO_COLOR: '1', FORCE_COLOR: '1' });
  assert.not.match(r.stdout + r.stderr, /\x1b\[/);
});

test('hash is stable, and changes with an input', async () => {
  const a = await run(['hash', 'sql:build']);
  const b = await run(['hash', 'sql:build']);
  assert.is(a.code, 0, a.stderr);
  assert.match(a.stdout.trim(), /^[0-9a-f]{64}$/);
  assert.is(a.stdout, b.stdout);
  writeFileSync(join(root, 'vm/sql/init.sh'), '#!/bin/sh\necho changed\n', { flag: 'a' });
  const c = await run(['hash', 'sql:build']);
  assert.is.not(c.stdout, a.stdout);
});

test('why names the config field that changed (memory), not only "config changed"', async () => {
  assert.is((await run(['run', 'sql:start-script'])).code, 0);
  const file = join(root, 'sovereign.config.ts');
  const before = readFileSync(file, 'utf8');
  writeFileSync(file, before.replace('memory: 1024', 'memory: 1100'));
  const r = await run(['why', 'sql:start-script']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /config field 'memory'/);
  assert.equal(JSON.parse((await run(['why', 'sql:start-script', '--json'])).stdout).changed, ["config field 'memory'"]);
  writeFileSync(file, before);
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
