// crosvm's shared network, rendered for three VMs and run for real (ip, iptables) in a throwaway network namespace
// standing in for the phone: one bridge, three TAPs, DNAT only for exposed ports, no other VM's rule ever deleted;
// the real `stop` and `remove` steps (through a session whose shell runs in the namespace) drop the VM's own TAP and
// tagged rules and nothing else; so does the real supervisor (supervise.sh under mksh) when it gives up on a VM whose
// (stand-in) crosvm keeps dying. With a compiled STAND-IN crosvm (test/support/crosvm-standin.c: crosvm is not in
// Debian) that keeps crosvm's control-socket CLI, the real stop ends a running VM through vm.sock, not by a signal.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig, type ServiceInput } from '../../lib/config.ts';
import type { DeviceSession } from '../../lib/device/device.ts';
import { exec } from '../../lib/exec.ts';
import type { Step } from '../../lib/task.ts';
import { renderStartScript, startScriptParams } from '../../lib/vm/start-script.ts';
import { remove } from '../../tasks/remove.ts';
import { stop } from '../../tasks/stop.ts';
import { stopVm } from '../../lib/vm/process.ts';
import { describeSupervisor, renderSupervisor, supervisorState } from '../../lib/vm/supervisor.ts';
import { fakeContext } from '../support/device-context.ts';

const ns = `sov-crosvm-${process.pid}`;
let dir = '';

const base = { readyMarker: 'up', kernel: { path: 'k' } } as const;
/** The three VMs of the phone; `vault` exposes its 443 on host port 8443 unless `vaultExpose` says otherwise. */
function phoneConfig(vaultExpose: ServiceInput['expose'] = [{ port: 443, hostPort: 8443 }]) {
  const r = resolveConfig({
    services: {
      sql: { ...base, displayName: 'PostgreSQL', guestIp: '192.168.100.2', ports: [5432] },
      forge: { ...base, displayName: 'Forgejo', guestIp: '192.168.100.3', ports: [443, 22], expose: [443] },
      vault: { ...base, displayName: 'Vaultwarden', guestIp: '192.168.100.4', ports: [443], expose: vaultExpose },
    },
    devices: { phone: { transport: 'adb', hypervisor: 'crosvm', arch: 'aarch64' } },
  }, 'test');
  if (!r.ok) throw r.error;
  return { services: r.value.services, phone: r.value.devices.get('phone')! };
}
function scripts(vaultExpose?: ServiceInput['expose']): Record<string, string> {
  const { services, phone } = phoneConfig(vaultExpose);
  return Object.fromEntries([...services.values()].map((s) => [s.name, renderStartScript(startScriptParams(s, phone))]));
}

/** The phone as a device session: every shell runs in the namespace (the service dirs are this test's folders). */
function phoneSession(): DeviceSession {
  const { phone } = phoneConfig();
  const session: Partial<DeviceSession> = {
    device: phone,
    serviceDir: (svc) => join(dir, svc),
    run: (script, opts = {}) => exec('ip', ['netns', 'exec', ns, 'sh', '-c', script], { nothrow: opts.nothrow, signal: opts.signal, timeoutMs: opts.timeoutMs }),
    exists: async (path) => fs.access(path).then(() => true, () => false),
    forgetPushes: () => {},
  };
  return session as DeviceSession;
}

/** Runs the real step (`stop` or `remove`) for one VM of the phone; resolves its log lines. */
async function runStep(step: Step, name: string, flags: { purge?: boolean } = {}): Promise<string[]> {
  const { services, phone } = phoneConfig();
  const { ctx, logs } = fakeContext({ step, service: services.get(name)!, device: phone, session: phoneSession(), root: dir, flags, confirm: true });
  if (!step.run) throw new Error(`step ${step.name} has no run`);
  await step.run(ctx);
  return logs;
}

/** The rules that went between two listings: all must carry `tag`. */
function onlyTagged(before: string[], after: string[], tag: string): string[] {
  const gone = before.filter((l) => !after.includes(l));
  assert.ok(gone.length > 0 && gone.every((l) => l.includes(tag)), `only ${tag}'s rules went:\n${gone.join('\n')}`);
  return gone;
}

/** Runs one VM's start.sh in the namespace (crosvm replaced by `true`: the network set-up is what runs). */
async function start(name: string, script: string): Promise<void> {
  const vmDir = join(dir, name);
  await fs.mkdir(vmDir, { recursive: true });
  await fs.writeFile(join(vmDir, 'start.sh'), script);
  const r = await exec('ip', ['netns', 'exec', ns, 'env', 'SOVEREIGN_CROSVM=true', 'SOVEREIGN_UPLINK=wlan0', 'sh', join(vmDir, 'start.sh')], { nothrow: true });
  assert.is(r.code, 0, `${name}'s start.sh failed:\n${r.stdout}\n${r.stderr}`);
}

const inNs = async (...args: string[]) => (await exec('ip', ['netns', 'exec', ns, ...args])).stdout;
const rules = async () => (await inNs('iptables-save')).split('\n').filter((l) => l.startsWith('-A '));
const dnat = async () => (await rules()).filter((l) => l.includes('-j DNAT')).map((l) => `${/--dport (\d+)/.exec(l)?.[1]}->${/--to-destination (\S+)/.exec(l)?.[1]}`).sort();

test.before(async () => {
  try { await setUp(); } catch (e) { console.error('crosvm-network set-up failed:', e); throw e; }
});
async function setUp() {
  if (process.getuid?.() !== 0) throw new Error('this test creates a network namespace and needs root (CI runs as root)');
  dir = await fs.mkdtemp(join(tmpdir(), `crosvm-net-${process.pid}-`));
  await exec('ip', ['netns', 'add', ns]);
  // The phone's Wi-Fi interface: one end of a veth pair with an address in its own LAN.
  await inNs('ip', 'link', 'add', 'wlan0', 'type', 'veth', 'peer', 'name', 'wlan0-peer');
  await inNs('ip', 'addr', 'add', '10.77.0.2/24', 'dev', 'wlan0');
  await inNs('ip', 'link', 'set', 'wlan0', 'up');
}
test.after(async () => {
  await exec('ip', ['netns', 'del', ns], { nothrow: true });
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

test('three VMs: one bridge with the gateway, three TAPs on it, DNAT only for the exposed ports', async () => {
  const s = scripts();
  for (const name of ['sql', 'forge', 'vault']) await start(name, s[name]);
  const links = await inNs('ip', '-o', 'link', 'show');
  assert.is(links.match(/: vm_bridge:/g)?.length, 1, links);
  for (const tap of ['vm_sql', 'vm_forge', 'vm_vault']) assert.match(links, new RegExp(`: ${tap}: .* master vm_bridge `), `${tap} on the bridge`);
  assert.match(await inNs('ip', '-o', 'addr', 'show', 'dev', 'vm_bridge'), /inet 192\.168\.100\.1\/24/);
  // forge's 443 (same port) and vault's 443 on 8443; nothing for sql (not exposed), nothing for forge's 22.
  assert.equal(await dnat(), ['443->192.168.100.3:443', '8443->192.168.100.4:443']);
  assert.ok((await rules()).some((l) => /-A POSTROUTING -s 192.168.100.0\/24 -o wlan0 .*MASQUERADE/.test(l)), 'one NAT for the LAN');
});

test('restarting a VM is idempotent: the same rules, none doubled', async () => {
  const before = (await rules()).sort();
  const s = scripts();
  await start('forge', s.forge);
  await start('sql', s.sql);
  assert.equal((await rules()).sort(), before);
});

test("a VM that stops exposing a port drops its own DNAT only; every other VM's rules stay", async () => {
  const before = await rules();
  await start('vault', scripts([]).vault);
  assert.equal(await dnat(), ['443->192.168.100.3:443']);
  onlyTagged(before, await rules(), 'sovereign-vault');
  const links = await inNs('ip', '-o', 'link', 'show');
  for (const tap of ['vm_sql', 'vm_forge']) assert.match(links, new RegExp(`: ${tap}: .* master vm_bridge `), `${tap} still on the bridge`);
});

test('the rendered scripts delete nothing shared: no bridge, rule or TAP of another VM', () => {
  const s = scripts();
  for (const [name, text] of Object.entries(s)) {
    assert.not.match(text, /ip link del "?\$?(BRIDGE|vm_bridge)/, `${name} deletes the bridge`);
    assert.not.match(text, /iptables[^\n]* -D /, `${name} has a literal rule deletion`);
    assert.not.match(text, /ip rule del|iptables -F|iptables -t nat -F/);
    for (const other of Object.keys(s)) if (other !== name) assert.not.ok(text.includes(`sovereign-${other}`), `${name} names ${other}'s rules`);
  }
});

test('stop of an exposing VM drops its TAP and its tagged DNAT/accept rules; the bridge, NAT and other VMs stay', async () => {
  await start('vault', scripts().vault);
  await fs.writeFile(join(dir, 'vault', 'data.img'), 'data');
  const before = await rules();
  assert.equal(await dnat(), ['443->192.168.100.3:443', '8443->192.168.100.4:443']);
  assert.match((await runStep(stop, 'vault')).join('\n'), /VM not running/);
  const after = await rules();
  const gone = onlyTagged(before, after, 'sovereign-vault');
  assert.ok(gone.some((l) => l.includes('-j DNAT')) && gone.some((l) => /-A FORWARD .*-j ACCEPT/.test(l)), `both of vault's rules went:\n${gone.join('\n')}`);
  assert.equal(after.filter((l) => !before.includes(l)), [], 'stop adds no rule');
  assert.equal(await dnat(), ['443->192.168.100.3:443']);
  const links = await inNs('ip', '-o', 'link', 'show');
  assert.not.match(links, /: vm_vault:/, 'vault\'s TAP is gone');
  for (const tap of ['vm_sql', 'vm_forge']) assert.match(links, new RegExp(`: ${tap}: .* master vm_bridge `), `${tap} still on the bridge`);
  assert.ok(after.some((l) => /-A POSTROUTING -s 192.168.100.0\/24 -o wlan0 .*MASQUERADE/.test(l)), 'the shared NAT stays');
  // Idempotent: a second stop changes nothing.
  await runStep(stop, 'vault');
  assert.equal(await rules(), after);
});

test('remove of an exposing VM drops its TAP and tagged rules too, keeps its data.img, and touches no other VM', async () => {
  await start('vault', scripts().vault);
  await fs.writeFile(join(dir, 'forge', 'data.img'), 'data');
  const before = await rules();
  assert.match((await runStep(remove, 'forge')).join('\n'), /kept data\.img/);
  const after = await rules();
  onlyTagged(before, after, 'sovereign-forge');
  assert.equal(await dnat(), ['8443->192.168.100.4:443']);
  assert.equal(await fs.readdir(join(dir, 'forge')), ['data.img']);
  const links = await inNs('ip', '-o', 'link', 'show');
  assert.not.match(links, /: vm_forge:/, 'forge\'s TAP is gone');
  for (const tap of ['vm_sql', 'vm_vault']) assert.match(links, new RegExp(`: ${tap}: .* master vm_bridge `), `${tap} still on the bridge`);
  // remove --purge of vault: its folder, TAP and rules go; sql's TAP and the bridge stay.
  await runStep(remove, 'vault', { purge: true });
  assert.equal(await dnat(), []);
  assert.not.ok((await rules()).some((l) => l.includes('sovereign-')), 'no tagged rule is left');
  assert.not.ok(await fs.access(join(dir, 'vault')).then(() => true, () => false), 'vault\'s folder is gone');
  assert.match(await inNs('ip', '-o', 'link', 'show'), /: vm_sql: .* master vm_bridge /);
});

test("remove of a VM whose folder is already gone still drops its rules and TAP (and nobody else's)", async () => {
  await start('vault', scripts().vault);
  await fs.rm(join(dir, 'vault'), { recursive: true });
  const before = await rules();
  assert.match((await runStep(remove, 'vault')).join('\n'), /nothing to remove/);
  onlyTagged(before, await rules(), 'sovereign-vault');
  assert.equal(await dnat(), []);
  const links = await inNs('ip', '-o', 'link', 'show');
  assert.not.match(links, /: vm_vault:/);
  assert.match(links, /: vm_sql: .* master vm_bridge /);
});

test("a VM whose crosvm keeps dying: when its supervisor gives up, its TAP and tagged rules go as stop takes them; another VM's stay", async () => {
  const s = scripts();
  await start('forge', s.forge);
  const others = (await rules()).filter((l) => !l.includes('sovereign-vault'));
  const vmDir = join(dir, 'vault');
  await fs.mkdir(vmDir, { recursive: true });
  await fs.writeFile(join(vmDir, 'start.sh'), s.vault);
  await fs.writeFile(join(dir, 'supervise.sh'), renderSupervisor());
  // STAND-IN crosvm that dies at once, noting what its run found: its TAP and its two tagged rules (DNAT, accept).
  const dying = join(dir, 'crosvm-dying');
  await fs.writeFile(dying, `#!/bin/sh\necho "stand-in crosvm: taps=$(ip -o link show vm_vault | wc -l) rules=$(iptables-save | grep -c sovereign-vault)"\nexit 1\n`, { mode: 0o755 });
  const r = await exec('ip', ['netns', 'exec', ns, 'env', `SOVEREIGN_CROSVM=${dying}`, 'SOVEREIGN_UPLINK=wlan0', 'SOVEREIGN_RESTART_LIMIT=2',
    'SOVEREIGN_RESTART_DELAY=0', 'mksh', join(dir, 'supervise.sh')], { cwd: vmDir, nothrow: true, timeoutMs: 30_000 });
  assert.is(r.code, 1, `the supervisor gives up (exit 1): ${r.stderr}`);
  assert.equal(await rules(), others, "vault's tagged rules went, and no other rule");
  assert.equal(await dnat(), ['443->192.168.100.3:443']);
  const links = await inNs('ip', '-o', 'link', 'show');
  assert.not.match(links, /: vm_vault:/, "vault's TAP is gone");
  for (const tap of ['vm_sql', 'vm_forge']) assert.match(links, new RegExp(`: ${tap}: .* master vm_bridge `), `${tap} still on the bridge`);
  // Each run had its network (a restart's start.sh rebuilds it); only the give-up took it away, once.
  for (const log of ['console.prev.log', 'console.log']) assert.is(await fs.readFile(join(vmDir, log), 'utf8'), 'stand-in crosvm: taps=1 rules=2\n', log);
  const log = await fs.readFile(join(vmDir, 'supervisor.log'), 'utf8');
  assert.match(log, /giving up after 2 restarts \(limit 2\)\n.* removed the VM's network \(its TAP and port rules\) as stop does\n$/, log);
  assert.is(log.match(/removed the VM's network/g)?.length, 1, log);
  assert.is(describeSupervisor(await supervisorState(phoneSession(), 'vault')), 'supervisor not running (gave-up), 2 restarts, last exit: exit status 1');
});

/**
 * Boots `name`'s rendered start.sh in the namespace, detached, with the STAND-IN crosvm `bin`; resolves the VM pid.
 * STAND-INS for Android's `device_config` and `settings` (not on this machine) record their arguments to android.log.
 */
async function boot(name: string, bin: string, env: string[] = []): Promise<number> {
  const vmDir = join(dir, name);
  const android = join(dir, 'android-bin');
  await fs.mkdir(vmDir, { recursive: true });
  await fs.mkdir(android, { recursive: true });
  for (const cmd of ['device_config', 'settings']) await fs.writeFile(join(android, cmd), `#!/bin/sh\necho "${cmd} $*" >> ${dir}/android.log\n`, { mode: 0o755 });
  await fs.writeFile(join(vmDir, 'start.sh'), scripts()[name]);
  await inNs('sh', '-c', `cd ${vmDir} && env PATH=${android}:$PATH SOVEREIGN_CROSVM=${bin} SOVEREIGN_UPLINK=wlan0 ${env.join(' ')} sh start.sh >console.log 2>&1 </dev/null & echo $! > ${vmDir}/vm.pid`);
  for (let i = 0; i < 100 && !(await fs.readFile(join(vmDir, 'console.log'), 'utf8')).includes('running, control socket'); i++) await new Promise((r) => setTimeout(r, 100));
  return Number((await fs.readFile(join(vmDir, 'vm.pid'), 'utf8')).trim());
}

test('stop ends a running crosvm through its control socket: powerbtn (a clean shutdown), else crosvm stop; never a signal', async () => {
  const bin = join(dir, 'crosvm');
  const cc = await exec('gcc', ['-O', '-o', bin, fileURLToPath(new URL('../support/crosvm-standin.c', import.meta.url))], { nothrow: true });
  assert.is(cc.code, 0, `compiling the crosvm stand-in (gcc: scripts/setup-host.sh installs it): ${cc.stderr}`);
  const consoleLog = () => fs.readFile(join(dir, 'sql', 'console.log'), 'utf8');
  // Gone or a zombie (its parent, the detaching shell, has already ended).
  const gone = (pid: number) => fs.readFile(`/proc/${pid}/stat`, 'utf8').then((t) => t.replace(/^.*\) /, '')[0] === 'Z', () => true);

  const pid = await boot('sql', bin);
  // What start.sh set up for crosvm, seen by the running program: the virt APEX's libraries and oom_score_adj
  // (-1000 where the kernel lets root lower it; this machine's sandbox answers EIO to any negative value).
  const lowers = (await exec('sh', ['-c', 'echo -1000 > /proc/self/oom_score_adj'], { nothrow: true })).code === 0;
  if (!lowers) console.log('  this machine refuses a negative oom_score_adj (EIO): start.sh\'s -1000 is not observable here');
  assert.match(await consoleLog(), new RegExp(`LD_LIBRARY_PATH=/apex/com\\.android\\.virt/lib64:/system/lib64 oom_score_adj=${lowers ? '-1000' : '0'}\n`), await consoleLog());
  // Android's phantom-process killer turned off before crosvm runs.
  assert.is(await fs.readFile(join(dir, 'android.log'), 'utf8'), ['device_config set_sync_disabled_for_tests persistent',
    'device_config put activity_manager max_phantom_processes 2147483647', 'settings put global settings_enable_monitor_phantom_procs false', ''].join('\n'));
  assert.equal(await runStep(stop, 'sql'), [`PostgreSQL: stopped (pid ${pid}, clean shutdown)`]);
  assert.ok(await gone(pid), 'the VM process is gone');
  assert.match(await consoleLog(), /control command powerbtn\ncrosvm stand-in: guest powered off \(powerbtn\)\n$/);
  assert.not.match(await consoleLog(), /SIGTERM/);
  assert.not.match(await inNs('ip', '-o', 'link', 'show'), /: vm_sql:/, 'its TAP is gone');

  // A guest that ignores the power button: crosvm stop ends the VM, still before any TERM.
  const hung = await boot('sql', bin, ['CROSVM_STANDIN_IGNORE_POWERBTN=1']);
  assert.equal(await stopVm(phoneSession(), 'sql', { shutdownSeconds: 1 }), { state: 'ended', pid: hung });
  assert.ok(await gone(hung), 'the VM process is gone');
  assert.match(await consoleLog(), /control command powerbtn\ncrosvm stand-in: control command stop\ncrosvm stand-in: guest powered off \(stop\)\n$/);
  assert.not.match(await consoleLog(), /SIGTERM/);
});

test.run();
