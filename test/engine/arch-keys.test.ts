// The device's architecture is in every artifact key it shapes: an x86 box and an aarch64 device never share
// base, image, kernel or rootfs; two aarch64 devices (a phone over adb, a local qemu) share all of them.
// Keys come from the real steps' inputs and the shipped config; a dependency's output is modelled as a
// function of its key (same recipe, same bytes), so nothing is built.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { loadConfig } from '../../lib/load-config.ts';
import { planGraph } from '../../lib/engine.ts';
import { keyOf, keyParts } from '../../lib/key.ts';
import { StatCache, sha256 } from '../../lib/hash.ts';
import type { Config, Device } from '../../lib/config.ts';
import { steps } from '../../tasks/index.ts';

const repo = join(import.meta.dirname, '..', '..');
const ARTIFACTS = ['sql:base', 'sql:kernel', 'sql:image', 'sql:rootfs'];

/** Keys of the artifacts `sql:rootfs` needs, on `device`, with each dependency's output hash derived from its key. */
async function keys(config: Config, device: Device): Promise<Record<string, string>> {
  const g = planGraph(config, steps, ['sql:rootfs'], device);
  const out: Record<string, string> = {};
  const src = { root: repo, stat: new StatCache(), toolMemo: {} };
  const keyOfTask = async (id: string): Promise<string> => {
    if (out[id]) return out[id];
    const n = g.nodes.get(id)!;
    const deps: Record<string, string> = {};
    for (const d of n.deps) deps[d] = sha256(`output of ${await keyOfTask(d)}`);
    const inputs = (await n.step.inputs?.(n.ctx)) ?? {};
    out[id] = keyOf(await keyParts({ stepName: n.step.name, version: n.step.version, kind: n.step.kind, device }, inputs, deps, src));
    return out[id];
  };
  for (const id of ARTIFACTS) await keyOfTask(id);
  return out;
}

test('x86_64 box vs aarch64 devices: different keys for base, image, kernel, rootfs; the aarch64 ones shared', async () => {
  const config = await loadConfig(repo);
  const x86: Device = { name: 'box', transport: 'ssh', host: 'box.lan', hypervisor: 'qemu', root: '/data/sovereign', arch: 'x86_64' };
  const phone = config.devices.get('phone')!;
  assert.is(phone.arch, 'aarch64', 'the shipped config\'s phone is aarch64');
  const armQemu: Device = { name: 'arm', transport: 'local', hypervisor: 'qemu', root: '.sovereign/devices/arm', arch: 'aarch64' };
  const [a, b, c] = [await keys(config, x86), await keys(config, phone), await keys(config, armQemu)];
  for (const id of ARTIFACTS) {
    assert.is.not(a[id], b[id], `${id}: x86_64 and aarch64 must not share`);
    assert.is(b[id], c[id], `${id}: two aarch64 devices share`);
  }
  // The local device (x86_64) and an ssh x86 box share too: the device's identity is not in artifact keys.
  assert.equal(await keys(config, config.devices.get('local')!), a);
});

test('the shipped kernel is the device\'s architecture\'s package', async () => {
  const config = await loadConfig(repo);
  const kernel = steps.get('kernel')!;
  const input = async (arch: Device['arch']) => JSON.stringify((await kernel.inputs!({ service: config.services.get('sql')!, config, device: { ...config.devices.get('local')!, arch } })).config);
  assert.match(await input('x86_64'), '"deb":"linux-image-cloud-amd64"');
  assert.match(await input('aarch64'), '"deb":"linux-image-cloud-arm64"');
});

test.run();
