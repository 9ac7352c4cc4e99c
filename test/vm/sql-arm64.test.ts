// The real PostgreSQL VM built for an aarch64 device on this (x86) machine and booted under qemu-system-aarch64
// (TCG): arm64 base, image, kernel and guest modules, the `-M virt` start script, a real SELECT 1, a clean stop.
// One cold build and one boot: the slowest test, kept to what proves the arm64 path.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { alive, MIN, startSqlVm, task, type SqlVm } from '../support/sql-vm.ts';

let vm: SqlVm;

test.before(async () => {
  // A local device that says it is aarch64: everything built for it must be arm64, and it boots under qemu-system-aarch64.
  // Emulated arm64 on a loaded 2-core machine: initdb alone takes minutes, so sql gets a longer start timeout here.
  vm = await startSqlVm({
    device: 'arm', deviceConfig: `{ transport: 'local', arch: 'aarch64' }`, startTimeout: 1500,
    tools: ['qemu-system-aarch64', 'mmdebstrap'], watchSecrets: false,
  });
});

test.after(async () => { await vm?.close(); });

test('cold `sql:start --device arm` builds arm64 artifacts and boots them under qemu-system-aarch64; SELECT 1 answers; stop is clean', async () => {
  // Unloaded 2-core machine: about 10 minutes; under a heavy load (emulated dpkg, apt and initdb) far longer.
  const r = await vm.run(['sql:start'], 120 * MIN);
  const slow = r.summary.tasks.filter((x) => (x.durationMs ?? 0) >= 1000).map((x) => `${x.task} ${((x.durationMs ?? 0) / 1000).toFixed(1)}s`);
  console.log(`  cold aarch64 sql:start ${r.secs.toFixed(1)}s: ${slow.join(', ')}`);
  for (const id of ['sql:base', 'sql:image', 'sql:rootfs', 'sql:kernel', 'sql:start']) assert.is(task(r.summary, id)?.outcome, 'ran', id);

  // The root file system the device got holds arm64 programs: the ELF machine of dash in rootfs.img (read with
  // debugfs, no mount) is aarch64 (183), not x86-64 (62). The boot below runs them under an arm64 kernel with no
  // binfmt in the guest, which proves the same for every program PostgreSQL needs. (Docker 20.10 records its own
  // architecture on `docker import --platform`, so the image label is not checked here.)
  const dash = spawnSync('debugfs', ['-R', 'cat /usr/bin/dash', join(vm.vmDir, 'rootfs.img')], { maxBuffer: 64 << 20 });
  assert.is(dash.status, 0, String(dash.stderr));
  assert.is(dash.stdout.subarray(0, 4).toString('latin1'), '\x7fELF', 'dash is an ELF program');
  assert.is(dash.stdout.readUInt16LE(18), 183, 'dash in rootfs.img is built for aarch64 (EM_AARCH64)');
  const log = vm.consoleLog();
  assert.match(log, /Machine model: linux,dummy-virt/, 'booted on qemu\'s arm virt machine');
  assert.match(log, /Linux version \S+-cloud-arm64/, 'an arm64 Debian cloud kernel');
  assert.match(log, /\[init\] modules: .*virtio_net.*virtio_input/, 'init loaded the arm64 kernel\'s modules, the virtio keyboard included');
  assert.match(log, 'PostgreSQL started');

  const t = await vm.run(['sql:test'], 5 * MIN);
  assert.match(t.stdout, /login as postgres runs SELECT 1: ✓ PASS/, t.stdout);
  assert.is(await vm.psql('SELECT 1'), '1');

  // Stop asks the guest to shut down (ctrl-alt-delete on the virtio keyboard -> SIGINT to init), not TERM/KILL.
  const pid = vm.vmPid()!;
  const stop = await vm.run(['sql:stop'], 5 * MIN);
  assert.match(stop.stdout + stop.stderr, /clean shutdown/, stop.stdout + stop.stderr);
  assert.not.ok(alive(pid), 'the VM process is gone after stop');
  assert.match(vm.consoleLog(), '[init] stopping PostgreSQL', 'the guest\'s init ran its shutdown');
});

test.run();
