// autostart: boot.sh and the hooks rendered and checked (sh -n under dash/mksh/busybox, systemd-analyze verify), then run for real
// through the CLI against the RECORDED ADB STAND-IN (no adbd here) with STAND-IN hypervisors: dependsOn order, readiness, no secret leaks, status, stop.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { promises as fs, readFileSync, readdirSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig } from '../../lib/config.ts';
import { exec } from '../../lib/exec.ts';
import { bootOrder, renderBootScript, renderHaltScript, renderHook } from '../../lib/vm/autostart.ts';
import { checkout, sovereign } from '../support/cli.ts';

const standin = fileURLToPath(new URL('../support/adb-standin', import.meta.url));
const SECRET = `pg-secret-${process.pid}-NEVER-LOGGED`;
let dir = '';
let work = '';
let fake = '';
let env: Record<string, string> = {};

const config = () => {
  const r = resolveConfig({
    services: {
      app: { displayName: 'App', guestIp: '192.168.100.3', ports: [80], readyMarker: 'APP UP', dependsOn: ['sql'], kernel: { path: 'k' } },
      sql: { displayName: 'SQL', guestIp: '192.168.100.2', ports: [5432], readyMarker: 'PostgreSQL started', failureMarkers: ['Kernel panic'], startTimeout: 60, kernel: { path: 'k' } },
    },
    devices: { box: { transport: 'ssh', host: 'box.lan', user: 'root', root: '/srv/sovereign', hypervisor: 'qemu' } as never, phone: { transport: 'adb', hypervisor: 'crosvm', arch: 'aarch64' } as never },
    defaultDevice: 'phone',
  }, 'test');
  if (!r.ok) throw r.error;
  return r.value;
};

/** Every process's argv on this machine (the stand-in device's processes are this machine's). */
const allArgv = () => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8'); } catch { return ''; } }).join('\n');
const until = async (what: string, f: () => Promise<boolean>, ms = 30_000) => {
  const end = Date.now() + ms;
  while (!(await f())) { if (Date.now() > end) throw new Error(`timed out waiting for ${what}`); await new Promise((r) => setTimeout(r, 200)); }
};
const read = (p: string) => fs.readFile(p, 'utf8').catch(() => '');

test.before(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'sov-autostart-'));
  fake = join(dir, 'device');
  const bin = join(dir, 'bin');
  await fs.mkdir(bin);
  await fs.mkdir(join(fake, 'data/local/tmp'), { recursive: true });
  await fs.symlink(standin, join(bin, 'adb'));
  // STAND-INS for the phone's own commands: Magisk's su (its version) and Android's getprop (the boot has
  // completed once the test creates the file `booted`).
  await fs.writeFile(join(bin, 'su'), '#!/bin/sh\n[ "$1" = -v ] && echo "27.0:MAGISK (stand-in)"\n', { mode: 0o755 });
  await fs.writeFile(join(bin, 'getprop'), `#!/bin/sh\n[ "$1" = sys.boot_completed ] && if [ -f ${dir}/booted ]; then echo 1; else echo 0; fi\n`, { mode: 0o755 });
  env = { PATH: `${bin}:${process.env.PATH}`, ADB_STANDIN_ROOT: fake, ADB_STANDIN_LOG: join(dir, 'argv.log'), ADB_STANDIN_DEVICES: 'R5CT0001 device' };
  work = checkout('sov-autostart-work-');
});

test.after(async () => {
  spawnSync('sh', ['-c', `for f in ${fake}/data/sovereign/vm/*/supervisor.pid ${fake}/data/sovereign/vm/*/vm.pid; do kill -9 $(cat $f) 2>/dev/null; done`]);
  if (dir) await fs.rm(dir, { recursive: true, force: true });
  if (work) await fs.rm(work, { recursive: true, force: true });
});

test('boot order follows dependsOn, not config order; boot.sh and the service.d hook are valid sh (dash, mksh, busybox)', async () => {
  const c = config();
  assert.equal(bootOrder(c).map((s) => s.name), ['sql', 'app']);
  const boot = join(dir, 'boot.sh');
  const hook = join(dir, 'hook.sh');
  await fs.writeFile(boot, renderBootScript(c, c.devices.get('phone')!));
  await fs.writeFile(hook, renderHook(c.devices.get('phone')!, '/data/sovereign/boot.sh', c));
  const halt = join(dir, 'halt.sh');
  await fs.writeFile(halt, renderHaltScript(c, c.devices.get('box')!));
  for (const sh of ['dash', 'mksh', 'busybox sh']) {
    for (const f of [boot, hook, halt]) {
      const [b, ...a] = sh.split(' ');
      const r = await exec(b, [...a, '-n', f], { nothrow: true });
      assert.is(r.code, 0, `${sh} -n ${f}: ${r.stderr}`);
    }
  }
  const text = await read(boot);
  assert.match(text, /start_vm sql 60 'PostgreSQL started' '' 'Kernel panic'\nstart_vm app 90 'APP UP' 'sql'/);
  assert.not.match(text, /SOVEREIGN_ACCEL/, 'crosvm needs no accelerator verdict');
  assert.match(await read(halt), /log "stopping the VMs: app sql"\nr=\$\(stop_0\); log "app: [^\n]*\nr=\$\(stop_1\); log "sql: /, 'halt.sh stops the dependent VM first');
  assert.match(renderBootScript(c, c.devices.get('box')!), /SOVEREIGN_ACCEL="\$\(cat \.\.\/\.accel/);
});

test('the systemd unit passes systemd-analyze verify', async () => {
  const c = config();
  const unitDir = join(dir, 'units');
  await fs.mkdir(unitDir);
  const unit = join(unitDir, 'sovereign-vms.service');
  await fs.writeFile(unit, renderHook(c.devices.get('box')!, '/srv/sovereign/boot.sh', c));
  const r = await exec('systemd-analyze', ['verify', unit], { nothrow: true });
  assert.is(r.code, 0, r.stderr);
  assert.not.match(r.stderr, /sovereign-vms/, `no warning about the unit: ${r.stderr}`);
  assert.match(await read(unit), /ExecStart=\/bin\/sh \/srv\/sovereign\/boot\.sh\n/);
  assert.match(await read(unit), /ExecStop=\/bin\/sh \/srv\/sovereign\/halt\.sh\nTimeoutStopSec=\d+\n/);
});

test('CLI: autostart needs exactly one of --enable/--disable (exit 2); the local device has no boot to hook (exit 2)', async () => {
  const none = await sovereign(['autostart', '--device', 'phone'], { cwd: work, env });
  assert.is(none.code, 2, none.stderr);
  assert.match(none.stderr, /exactly one of --enable or --disable/);
  const local = await sovereign(['autostart', '--enable', '--device', 'local'], { cwd: work, env });
  assert.is(local.code, 2, local.stderr);
  assert.match(local.stderr, /autostart is for devices with a boot of their own/);
  const help = await sovereign(['autostart', '--help'], { cwd: work, env });
  assert.match(help.stdout, /service\.d\/sovereign\.sh/);
});

test('stand-in phone: enable installs the hook; at "boot" sql then forge start under supervisors, in order, secrets in no log or argv; status; stop; disable', async () => {
  // Deployed on the phone: sql and forge (forge depends on sql); vault is not. STAND-IN hypervisors in start.sh:
  // they note when they start, take a second to "boot", read their secrets disk, print the ready marker, then run.
  const markers: Record<string, string> = { sql: 'PostgreSQL started', forge: 'INIT COMPLETE' };
  for (const name of ['sql', 'forge']) {
    const vm = join(fake, 'data/sovereign/vm', name);
    await fs.mkdir(vm, { recursive: true });
    await fs.writeFile(join(vm, 'rootfs.img'), 'rootfs');
    await fs.writeFile(join(vm, 'secrets.env'), `POSTGRES_PASSWORD=${SECRET}\n`, { mode: 0o600 });
    await fs.writeFile(join(vm, 'start.sh'), `echo "$(date +%s%N) ${name} start" >> ../../order.log
sleep 1
grep -q '^POSTGRES_PASSWORD=' secrets.env && echo "${name}: secrets disk readable"
echo "$(date +%s%N) ${name} ready" >> ../../order.log
echo '${markers[name]}'
exec sleep 600
`);
  }
  const en = await sovereign(['autostart', '--enable', '--device', 'phone', '--json'], { cwd: work, env });
  assert.is(en.code, 0, en.stderr);
  assert.equal(JSON.parse(en.stdout), { device: 'phone', enabled: true, hook: '/data/adb/service.d/sovereign.sh', bootScript: '/data/sovereign/boot.sh', order: ['sql', 'forge', 'vault'] });
  const hook = join(fake, 'data/adb/service.d/sovereign.sh');
  assert.is((await fs.stat(hook)).mode & 0o777, 0o755);
  assert.is((await fs.stat(join(fake, 'data/sovereign/supervise.sh'))).mode & 0o777, 0o755);

  // STAND-IN for Magisk at boot: it runs service.d scripts with Android's shell (mksh); device paths map into the stand-in's folder.
  // The phone's boot completes 2 s after the hook starts: boot.sh must wait for it before it starts any VM.
  const t = Date.now();
  spawn('sh', ['-c', `sleep 2 && touch ${dir}/booted`], { stdio: 'ignore' });
  execFileSync('sh', ['-c', `sed "s|/data/|${fake}/data/|g" "${hook}" | mksh`], { env: { ...process.env, ...env } });
  const bootLog = join(fake, 'data/sovereign/boot.log');
  await until('boot.sh to finish', async () => /done; ready:/.test(await read(bootLog)));
  console.log(`  boot.sh brought up sql then forge in ${((Date.now() - t) / 1000).toFixed(1)}s (stand-in hypervisors, 1 s boot each)`);
  const log = await read(bootLog);
  assert.match(log, /boot: sys\.boot_completed=1 after [2-9]s\n/, log);
  assert.match(log, /boot: sql: ready after \d+s[\s\S]*boot: forge: ready after \d+s[\s\S]*boot: vault: not deployed here, skipped[\s\S]*done; ready: sql forge $/m);
  const order = (await read(join(fake, 'data/sovereign/order.log'))).trim().split('\n').map((l) => l.split(' '));
  assert.equal(order.map((o) => `${o[1]} ${o[2]}`), ['sql start', 'sql ready', 'forge start', 'forge ready']);
  assert.ok(BigInt(order[2][0]) > BigInt(order[1][0]), 'forge starts only after sql is ready');
  assert.ok(BigInt(order[0][0]) >= (await fs.stat(join(dir, 'booted'), { bigint: true })).mtimeNs, 'sql starts only after the boot completed');
  for (const name of ['sql', 'forge']) {
    const vm = join(fake, 'data/sovereign/vm', name);
    assert.match(await read(join(vm, 'console.log')), new RegExp(`${name}: secrets disk readable\\n${markers[name]}`));
    const sup = Number((await read(join(vm, 'supervisor.pid'))).trim());
    const pid = Number((await read(join(vm, 'vm.pid'))).trim());
    assert.is(Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]), sup, `${name}: its supervisor is its parent`);
  }
  const everything = [log, allArgv(), await read(join(dir, 'argv.log')), ...(await Promise.all(['sql', 'forge'].flatMap((n) => ['console.log', 'supervisor.log'].map((f) => read(join(fake, 'data/sovereign/vm', n, f))))))].join('\n');
  assert.not.ok(everything.includes(SECRET), 'the secret is in no log and no process argv');

  // A second boot.sh run (e.g. the hook firing again) leaves running VMs alone.
  execFileSync('sh', ['-c', `sed "s|/data/|${fake}/data/|g" "${hook}" | mksh`], { env: { ...process.env, ...env } });
  await until('the second boot.sh to finish', async () => (await read(bootLog)).split('done; ready:').length === 3);
  assert.match(await read(bootLog), /sql: already running/, await read(bootLog));

  const st = await sovereign(['status', '--device', 'phone'], { cwd: work, env });
  assert.is(st.code, 0, st.stderr);
  // The stand-in phone's commands run on this machine: its `uname -r` is this kernel's release.
  const deviceLine = `│ device phone (adb -s R5CT0001): connected, kernel ${release()}, root via su 27.0:MAGISK (stand-in)\n`;
  assert.ok(st.stdout.includes(deviceLine), st.stdout);
  assert.match(st.stdout, /PostgreSQL: running, ready \(pid \d+, deployed set unknown\)/);
  assert.match(st.stdout, /supervisor pid \d+ \(running\), 0 restarts/);
  assert.match(st.stdout, /Vaultwarden: not running/);
  assert.is(st.stdout.match(/device phone/g)?.length, 1, 'the device line comes once per run');
  // The same answer as data, per VM: running and ready, with pid and supervisor; vault is not deployed.
  const js = await sovereign(['status', '--device', 'phone', '--json'], { cwd: work, env });
  assert.is(js.code, 0, js.stderr);
  const facts = Object.fromEntries((JSON.parse(js.stdout) as { tasks: { task: string; facts: Record<string, unknown> }[] }).tasks.map((x) => [x.task, x.facts]));
  for (const name of ['sql', 'forge']) {
    const f = facts[`${name}:status`] as { running: boolean; ready: boolean; pid: number; supervisor: { alive: boolean; state: string; restarts: number } };
    assert.ok(f.running && f.ready, `${name}: running and ready in ${js.stdout}`);
    assert.is(f.pid, Number((await read(join(fake, 'data/sovereign/vm', name, 'vm.pid'))).trim()));
    assert.equal([f.supervisor.alive, f.supervisor.restarts], [true, 0], js.stdout);
  }
  assert.equal(facts['vault:status'], { service: 'vault', running: false, ready: false });

  // test starts with the same device line, then checks each VM (the stand-in VMs serve no port: those checks fail).
  const tst = await sovereign(['test', '--sql', '--device', 'phone'], { cwd: work, env });
  assert.ok(tst.stdout.includes(deviceLine), tst.stdout);
  assert.match(tst.stdout, /│ 1\. VM process running: ✓ PASS\n.*│ 2\. ready marker "PostgreSQL started" in console\.log: ✓ PASS$/m, tst.stdout);

  const vmPids = await Promise.all(['sql', 'forge'].map(async (n) => Number((await read(join(fake, 'data/sovereign/vm', n, 'vm.pid'))).trim())));
  const stop = await sovereign(['stop', '--sql', '--forge', '--device', 'phone'], { cwd: work, env });
  assert.is(stop.code, 0, stop.stderr);
  await new Promise((r) => setTimeout(r, 1500));
  for (const name of ['sql', 'forge']) {
    assert.is((await read(join(fake, 'data/sovereign/vm', name, 'supervisor.state'))).match(/state=(\w+)/)?.[1], 'stopped', `${name}: its supervisor was stopped, so nothing restarts it`);
    assert.not.ok(await fs.access(join(fake, 'data/sovereign/vm', name, 'vm.pid')).then(() => true, () => false));
  }

  const gone = (pid: number) => { try { return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0] === 'Z'; } catch { return true; } };
  for (const pid of vmPids) assert.ok(gone(pid), `VM process ${pid} is gone`);
  const dis = await sovereign(['autostart', '--disable', '--device', 'phone'], { cwd: work, env });
  assert.is(dis.code, 0, dis.stderr);
  assert.match(dis.stdout, /autostart disabled on phone/);
  assert.not.ok(await fs.access(hook).then(() => true, () => false));
  assert.not.ok(await fs.access(join(fake, 'data/sovereign/boot.sh')).then(() => true, () => false));
});

test.run();
