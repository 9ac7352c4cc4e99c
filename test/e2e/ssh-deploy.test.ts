// End to end through the real CLI: forge:deploy to a separate host (sshd in a network namespace) as device `box`,
// then a second deploy that pushes nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { startSshdDevice, type SshdDevice } from '../support/sshd-netns.ts';
import { identityOf, mode, outcomes, ran, sha256, tinyProject, type RunSummary, type TinyProject } from '../support/tiny-project.ts';

let dockerd: Dockerd;
let box: SshdDevice;
let p: TinyProject;
const show = (s: RunSummary) => s.tasks.map((t) => `${t.task}=${t.outcome}${t.reason ? ` (${t.reason})` : ''}${t.bytes ? ` ${t.bytes}B` : ''}`).join('\n');

test.before(async () => {
  [dockerd, box] = await Promise.all([startDockerd(), startSshdDevice()]);
  const d = box.device;
  const device = `
    box: {
      transport: 'ssh', host: '${d.host}', user: 'root', port: 22, identity: '${d.identity}',
      strictHostKeyChecking: 'yes', knownHosts: '${d.knownHosts}', root: '${d.root}', hypervisor: 'qemu',
    },
  `;
  p = tinyProject('ssh', dockerd.host, { devices: device });
});
test.after(async () => {
  p?.cleanup();
  await Promise.all([box?.cleanup(), dockerd?.stop()]);
});

test('7a. forge:deploy --device box puts every file, mode and the manifest under the device root', async () => {
  const t = Date.now();
  const { code, summary, stderr } = await p.runJson(['run', 'forge:deploy', '--device', 'box']);
  console.log(`  forge:deploy --device box: ${((Date.now() - t) / 1000).toFixed(1)}s`);
  assert.is(code, 0, stderr);
  const dev = join(box.root, 'vm', 'forge');
  for (const f of ['rootfs.img', 'kernel', 'start.sh', 'data.img', 'secrets.env', 'manifest.json']) assert.ok(existsSync(join(dev, f)), `${f} on box`);
  assert.is(mode(join(dev, 'start.sh')), 0o755);
  assert.is(mode(join(dev, 'secrets.env')), 0o600);
  assert.not.ok(existsSync(join(p.root, '.sovereign', 'devices')), 'nothing went to the local device');

  const manifest = JSON.parse(readFileSync(join(dev, 'manifest.json'), 'utf8')) as { files: Record<string, { sha256: string; size: number }> };
  const local: Record<string, string> = {
    'rootfs.img': join(p.root, '.sovereign', 'out', 'forge', 'rootfs.img'),
    kernel: join(p.root, '.sovereign', 'out', 'sql', 'kernel'),
    'start.sh': join(p.root, '.sovereign', 'out', 'forge', 'start.sh'),
    'data.img': join(p.root, '.sovereign', 'data', 'forge', 'data.img'),
  };
  for (const [name, path] of Object.entries(local)) {
    assert.is(sha256(join(dev, name)), sha256(path), `${name} on box equals the local one`);
    assert.equal(manifest.files[name], await identityOf(name, path), `manifest entry of ${name}`);
  }
  // The sparse data disk travels as its data, not its apparent size.
  const dataBytes = summary.tasks.find((t) => t.task === 'forge:push-data-disk')?.bytes ?? 0;
  console.log(`  pushed ${summary.bytes} bytes in all, data.img ${dataBytes} of ${statSync(local['data.img']).size}`);
  assert.ok(dataBytes > 0 && dataBytes < statSync(local['data.img']).size / 4, `data.img sent ${dataBytes} bytes:\n${show(summary)}`);
});

test('7b. a second deploy to box pushes 0 bytes', async () => {
  const wireBefore = await box.wireBytes();
  const t = Date.now();
  const { code, summary, stderr } = await p.runJson(['run', 'forge:deploy', '--device', 'box']);
  console.log(`  second forge:deploy --device box: ${((Date.now() - t) / 1000).toFixed(1)}s`);
  assert.is(code, 0, stderr);
  assert.equal(ran(summary), [], show(summary));
  assert.is(summary.bytes, 0);
  for (const t of ['rootfs', 'kernel', 'start-script', 'data-disk', 'secrets']) assert.is(outcomes(summary)[`forge:push-${t}`], 'skipped', show(summary));
  // Only checks crossed the wire (ssh handshakes, manifest, modes): far less than one rootfs.img.
  const wire = (await box.wireBytes()) - wireBefore;
  console.log(`  ${wire} bytes on the wire for the checks`);
  assert.ok(wire < 1 << 20, `${wire} bytes crossed the veth`);
});

test.run();
