// Guest kernel modules through the pipeline: the kernel step's modules.tar (Debian package -> NIC modules in
// load order; other sources -> empty), and rootfs installing it at /lib/modules/sovereign under merged /usr.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
import { buildRootfs } from '../../lib/build/rootfs.ts';
import { exec } from '../../lib/exec.ts';
import { fetchKernel, guestModules, moduleDepends, MODULES_ORDER } from '../../lib/vm/kernel.ts';

let dir = '';
let imageTar = '';

test.before(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), `sov-modules-${process.pid}-`));
  // A merged-/usr image tree (lib -> usr/lib, sbin -> usr/sbin), as Debian's, as an image tar.
  const tree = join(dir, 'tree');
  for (const d of ['usr/lib', 'usr/sbin', 'etc']) await fs.mkdir(join(tree, d), { recursive: true });
  await fs.symlink('usr/lib', join(tree, 'lib'));
  await fs.symlink('usr/sbin', join(tree, 'sbin'));
  await fs.writeFile(join(tree, 'etc/hostname'), 'x\n');
  imageTar = join(dir, 'image.tar');
  await tar.c({ file: imageTar, cwd: tree, portable: true }, ['.']);
  await fs.writeFile(join(dir, 'init.sh'), '#!/bin/sh\n');
});
test.after(async () => { if (dir) await fs.rm(dir, { recursive: true, force: true }); });

const entries = async (file: string) => { const names: string[] = []; await tar.t({ file, onReadEntry: (e) => { names.push(e.path); } }); return names; };

async function rootfs(name: string, modulesTar: string): Promise<string> {
  const out = join(dir, `${name}.img`);
  await buildRootfs({ tar: imageTar, out, sizeBytes: 64 * 1024 * 1024, initSh: join(dir, 'init.sh'), workDir: dir, seed: 'modules-test', modulesTar });
  return out;
}
const debugfs = async (img: string, req: string) => (await exec('debugfs', ['-R', req, img])).stdout;

test('moduleDepends reads the depends= entry of .modinfo', () => {
  assert.equal(moduleDepends(Buffer.from('\0license=GPL\0depends=virtio_ring,virtio,net-failover\0vermagic=6.1\0')), ['virtio_ring', 'virtio', 'net_failover']);
  assert.equal(moduleDepends(Buffer.from('\0depends=\0name=x\0')), []);
  assert.equal(moduleDepends(Buffer.from('no modinfo here')), []);
});

test('a { deb } kernel: modules.tar holds the NIC modules from the same package, dependencies first, and is reproducible', async () => {
  const a = join(dir, 'a', 'modules.tar');
  const b = join(dir, 'b', 'modules.tar');
  await fetchKernel({ deb: 'linux-image-cloud-amd64' }, { root: dir, dest: join(dir, 'a', 'kernel'), modulesDest: a });
  await fetchKernel({ deb: 'linux-image-cloud-amd64' }, { root: dir, dest: join(dir, 'b', 'kernel'), modulesDest: b });
  assert.ok((await fs.readFile(a)).equals(await fs.readFile(b)), 'same package, same bytes');
  const x = join(dir, 'x');
  await fs.mkdir(x);
  await tar.x({ file: a, cwd: x });
  const order = (await fs.readFile(join(x, MODULES_ORDER), 'utf8')).trim().split('\n').map((f) => f.replace(/\.ko$/, ''));
  for (const m of guestModules('x86_64')) assert.ok(order.includes(m), m);
  assert.equal(order, ['virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio', 'virtio_pci', 'failover', 'net_failover', 'virtio_net']);
  // Every module comes after everything it depends on.
  for (const [i, m] of order.entries()) {
    for (const dep of moduleDepends(await fs.readFile(join(x, `${m}.ko`)))) assert.ok(order.indexOf(dep) >= 0 && order.indexOf(dep) < i, `${dep} before ${m}`);
  }
  // The modules' vermagic is the kernel's version (the same package).
  const vermagic = /vermagic=(\S+)/.exec((await fs.readFile(join(x, 'virtio_net.ko'))).toString('latin1'))?.[1];
  assert.ok(vermagic && (await fs.readFile(join(dir, 'a', 'kernel'))).includes(Buffer.from(vermagic)), `kernel has version ${vermagic}`);
});

test('rootfs installs modules.tar at /lib/modules/sovereign (root-owned 0644); an empty tar ({ url } / { path } kernels) adds nothing', async () => {
  const img = await rootfs('with', join(dir, 'a', 'modules.tar'));
  const listing = await debugfs(img, 'ls -l /usr/lib/modules/sovereign');
  for (const f of ['virtio_net.ko', 'virtio_pci.ko', MODULES_ORDER]) assert.match(listing, new RegExp(`100644\\s+\\(1\\)\\s+0\\s+0\\s+\\d+.*${f.replace('.', '\\.')}`), f);
  assert.match(await debugfs(img, `cat /usr/lib/modules/sovereign/${MODULES_ORDER}`), /virtio_ring\.ko\n(.*\n)*virtio_net\.ko\n$/);

  const empty = join(dir, 'p', 'modules.tar');
  await fs.writeFile(join(dir, 'vmlinuz'), 'not really a kernel');
  await fetchKernel({ path: join(dir, 'vmlinuz') }, { root: dir, dest: join(dir, 'p', 'kernel'), modulesDest: empty });
  assert.equal(await entries(empty), []);
  const plain = await rootfs('without', empty);
  assert.match(await debugfs(plain, 'ls -l /usr/lib'), /^(?![\s\S]*\bmodules\b)/, 'no modules folder');
});

test.run();
