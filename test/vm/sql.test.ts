// The real PostgreSQL VM end to end through the real CLI on the `local` device: base, image, rootfs,
// kernel with its NIC modules, data disk; boot under qemu; a real login and query; a warm no-op; data kept across restarts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { alive, MIN, startSqlVm, task, type RunSummary, type SqlVm } from '../support/sql-vm.ts';

let vm: SqlVm;
const tail = (text: string, n: number) => text.trim().split('\n').slice(-n).join('\n');
const times: Record<string, number> = {};

test.before(async () => {
  vm = await startSqlVm({ tools: ['qemu-system-x86_64'] });
});

test.after(async () => {
  const summary = Object.entries(times).map(([k, v]) => `${k} ${v.toFixed(1)}s`).join(', ');
  if (summary) console.log(`  sql VM times: ${summary}`);
  await vm?.close();
});

test('cold `sql:start`: builds everything, pushes, boots under qemu, waits for the ready marker', async () => {
  const r = await vm.run(['sql:start'], 20 * MIN);
  times.cold = r.secs;
  times.boot = (task(r.summary, 'sql:start')?.durationMs ?? NaN) / 1000;
  const slow = r.summary.tasks.filter((x) => (x.durationMs ?? 0) >= 1000).map((x) => `${x.task} ${((x.durationMs ?? 0) / 1000).toFixed(1)}s`);
  console.log(`  cold sql:start ${r.secs.toFixed(1)}s (boot ${times.boot.toFixed(1)}s): ${slow.join(', ')}`);
  for (const id of ['sql:base', 'sql:image', 'sql:rootfs', 'sql:kernel', 'sql:push-rootfs', 'sql:start']) assert.is(task(r.summary, id)?.outcome, 'ran', id);
  assert.ok(r.summary.bytes > 0);
  const log = vm.consoleLog();
  assert.match(log, /\[init\] modules: virtio_ring .*virtio_net/, 'init loaded the NIC modules shipped by the kernel step');
  assert.match(log, /\[init\] network: \S+ 192\.168\.100\.2\/24/, 'the guest has a network interface');
  assert.match(log, 'PostgreSQL started');
  assert.ok(vm.vmPid() && alive(vm.vmPid()!), 'the VM runs');
});

test('`sql:test` logs in as postgres and runs SELECT 1', async () => {
  const r = await vm.run(['sql:test'], 3 * MIN);
  assert.match(r.stdout, /login as postgres runs SELECT 1: ✓ PASS/, r.stdout.trim().split('\n').slice(-20).join('\n'));
  assert.match(r.stdout, 'ALL TESTS PASSED');
  assert.not.match(r.stdout + r.stderr, vm.password);
});

test('`sql:test` fails when the login fails (a wrong password in .env)', async () => {
  const envFile = join(vm.root, '.env');
  const good = await fs.readFile(envFile, 'utf8');
  await fs.writeFile(envFile, good.replace(vm.password, 'not-the-password'), { mode: 0o600 });
  try {
    const r = await vm.raw(['sql:test'], 3 * MIN);
    assert.is(r.code, 1, (r.stdout + r.stderr).trim().split('\n').slice(-20).join('\n'));
    assert.match(r.stdout + r.stderr, /login as postgres runs SELECT 1: ✗ FAIL \(.*password authentication failed/);
  } finally {
    await fs.writeFile(envFile, good, { mode: 0o600 });
  }
});

test('`forge:test` checks forge\'s own database login against the real sql VM (forge itself is not running here)', async () => {
  const r = await vm.raw(['forge:test'], 3 * MIN);
  assert.match(r.stdout + r.stderr, /database login as forgejo to sql\/forgejo runs SELECT 1: ✓ PASS/, tail(r.stdout + r.stderr, 20));
  const envFile = join(vm.root, '.env');
  const good = await fs.readFile(envFile, 'utf8');
  await fs.writeFile(envFile, good.replace(/^POSTGRES_FORGEJO_PASSWORD=.*$/m, 'POSTGRES_FORGEJO_PASSWORD=not-the-password'), { mode: 0o600 });
  try {
    const bad = await vm.raw(['forge:test'], 3 * MIN);
    assert.match(bad.stdout + bad.stderr, /database login as forgejo to sql\/forgejo runs SELECT 1: ✗ FAIL \(.*password authentication failed/, tail(bad.stdout + bad.stderr, 20));
  } finally {
    await fs.writeFile(envFile, good, { mode: 0o600 });
  }
});

test('warm `sql:start`: nothing runs, 0 bytes pushed', async () => {
  const pid = vm.vmPid();
  const r = await vm.run(['sql:start'], 3 * MIN, ['--json']);
  times.warm = r.secs;
  console.log(`  warm sql:start ${r.secs.toFixed(1)}s`);
  const summary = JSON.parse(r.stdout) as RunSummary;
  const ran = summary.tasks.filter((x) => x.outcome === 'ran').map((x) => x.task);
  assert.equal(ran, [], `tasks ran on a warm run: ${ran.join(', ')}`);
  assert.is(summary.bytes, 0);
  assert.is(vm.vmPid(), pid, 'the same VM keeps running');
});

test('data survives stop and start: a table created before is there after', async () => {
  await vm.psql('CREATE TABLE sovereign_probe (v text); INSERT INTO sovereign_probe VALUES (\'kept\')');
  const pid = vm.vmPid()!;
  await vm.run(['sql:stop'], 2 * MIN);
  assert.not.ok(alive(pid), 'the VM process is gone after stop');
  const r = await vm.run(['sql:start'], 5 * MIN);
  assert.is(task(r.summary, 'sql:start')?.outcome, 'ran');
  assert.is(r.summary.tasks.filter((x) => x.outcome === 'ran').length, 1, 'only start ran');
  times.restart = (task(r.summary, 'sql:start')?.durationMs ?? NaN) / 1000;
  assert.is(await vm.psql('SELECT v FROM sovereign_probe'), 'kept');
  const stop = await vm.run(['sql:stop'], 2 * MIN);
  assert.is(stop.summary.ok, true);
  assert.is(vm.vmPid(), undefined, 'no pid file after stop');
});

test.run();
