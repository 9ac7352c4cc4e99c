// The device's guest LAN on qemu with tiny busybox VMs (fast): VMs of one device reach each other at their guestIp,
// and stopping one (even the first started) never cuts the others' network.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, type Config } from '../../lib/config.ts';
import type { DeviceSession } from '../../lib/device/device.ts';
import { runningPid, stopVm } from '../../lib/vm/process.ts';
import { start } from '../../tasks/start.ts';
import { startScript } from '../../tasks/start-script.ts';
import { cloudKernel, fakeRun, freePort, killVmsAndRemove, openSession, repoRoot, tinyDisks } from '../support/tiny-vm.ts';

let root = '';
let config: Config;
let session: DeviceSession;
const started: number[] = [];

/** Three tiny VMs on one local device: a serves, b and c fetch a's page over the LAN (`tiny.peer`). */
function makeConfig(deviceRoot: string): Config {
  const tiny = (guestIp: string, cmdline = '') => ({ displayName: `Tiny ${guestIp}`, dir: 'test/fixtures/vm/tiny', guestIp, ports: [8080], readyMarker: 'TINY READY', kernel: { path: 'kernel' }, memory: 256, startTimeout: 300, ...(cmdline ? { cmdline } : {}) });
  const r = resolveConfig({
    services: { a: tiny('192.168.100.9'), b: tiny('192.168.100.10', 'tiny.peer=192.168.100.9'), c: tiny('192.168.100.11', 'tiny.peer=192.168.100.10') },
    devices: { dev: { transport: 'local', root: deviceRoot, hypervisor: 'qemu' } },
    defaultDevice: 'dev',
  }, 'test');
  if (!r.ok) throw r.error;
  return r.value;
}

const ctxFor = (name: string) => {
  const f = fakeRun(config, session);
  return { ...f, ctx: { ...f.ctx, service: config.services.get(name)! } };
};

async function boot(name: string): Promise<string[]> {
  const { ctx, lines } = ctxFor(name);
  await start.run!(ctx);
  started.push((await runningPid(session, name))!);
  return lines;
}

test.before(async () => {
  try {
    root = await fs.mkdtemp(join(tmpdir(), `lan-${process.pid}-`));
    config = makeConfig(root);
    session = await openSession(config.devices.get('dev')!, repoRoot);
    const { kernel, modules } = await cloudKernel();
    for (const name of ['a', 'b', 'c']) {
      const dir = join(root, 'vm', name);
      await fs.mkdir(dir, { recursive: true });
      await fs.copyFile(kernel, join(dir, 'kernel'));
      await tinyDisks(dir, modules);
      await startScript.run!({ ...ctxFor(name).ctx, outDir: dir });
      process.env[`SOVEREIGN_PORT_${name.toUpperCase()}_8080`] = String(await freePort());
    }
  } catch (e) {
    console.error('lan set-up failed:', e);
    throw e;
  }
});

test.after(async () => {
  await session?.close();
  await killVmsAndRemove(started, root);
});

test('b reaches a at its guestIp over the shared LAN', async () => {
  await boot('a');
  const lines = await boot('b');
  assert.ok(lines.includes('| tiny: peer 192.168.100.9 says: tiny says hello'), lines.filter((l) => l.includes('tiny:')).join('\n'));
});

test('stopping a (the first VM started) leaves b and c on the LAN: a VM started after it reaches b', async () => {
  const stopped = await stopVm(session, 'a');
  assert.not.equal(stopped.state, 'not running');
  const lines = await boot('c');
  assert.ok(lines.includes('| tiny: peer 192.168.100.10 says: tiny says hello'), lines.filter((l) => l.includes('tiny:')).join('\n'));
});

test.run();
