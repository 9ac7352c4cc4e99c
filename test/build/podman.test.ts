// podman as the alternative builder: same steps, same CLI, a rootfs.img with the image's files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../../lib/exec.ts';
import { checkout, sovereign } from '../support/cli.ts';

test('builder: podman builds the image and rootfs.img holds its files', async () => {
  const podman = await exec('podman', ['--version'], { nothrow: true }).catch(() => undefined);
  assert.ok(podman && podman.code === 0, 'podman is installed (scripts/setup-host.sh installs it)');
  // Private storage, so the test touches no image store of the machine.
  const storage = mkdtempSync(join(tmpdir(), 'sovereign-podman-'));
  writeFileSync(join(storage, 'storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = "${storage}/graph"\nrunroot = "${storage}/run"\n`);
  const root = checkout('sovereign-podman-checkout-', `import { defineConfig } from 'sovereign';
export default defineConfig({
  builder: 'podman',
  services: { tiny: { displayName: 'Tiny', guestIp: '10.0.0.2', ports: [], readyMarker: 'ready', kernel: { path: 'kernel' }, rootfsSize: '16M' } },
});
`);
  mkdirSync(join(root, 'vm/tiny'), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'vm/tiny/busybox'));
  writeFileSync(join(root, 'vm/tiny/Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\n');
  writeFileSync(join(root, 'vm/tiny/.dockerignore'), 'init.sh\n');
  writeFileSync(join(root, 'vm/tiny/init.sh'), '#!/bin/busybox sh\necho ready\n');
  writeFileSync(join(root, 'kernel'), 'not a real kernel: this test only builds');
  try {
    const r = await sovereign(['run', 'tiny:rootfs'], { cwd: root, env: { CONTAINERS_STORAGE_CONF: join(storage, 'storage.conf') } });
    assert.is(r.code, 0, r.stdout + r.stderr);
    const img = join(root, '.sovereign/out/tiny/rootfs.img');
    const ls = await exec('debugfs', ['-R', 'stat /bin/busybox', img]);
    assert.match(ls.stdout, /Type: regular/);
    const init = await exec('debugfs', ['-R', 'cat /sbin/init.sh', img]);
    assert.match(init.stdout, /echo ready/);
  } finally {
    rmSync(root, { recursive: true, force: true });
    await exec('rm', ['-rf', storage], { nothrow: true }); // vfs layers may hold read-only dirs
  }
});

test.run();
