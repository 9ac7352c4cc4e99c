// The guest's setup_network (vm/common/init-lib.sh) from the kernel command line lib/vm/network.ts renders: address,
// default route and one resolv.conf nameserver line per sovereign.dns address. Runs the real init-lib under busybox in
// a chroot (test/support/busybox-root.ts) in private mount, pid and network namespaces (root), with a TAP interface
// standing in for the VM's virtio NIC and a plain file as /proc/cmdline.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { guestMac, netCmdline } from '../../lib/vm/network.ts';
import { busyboxRoot, runInRoot } from '../support/busybox-root.ts';

const SCRIPT = `. /sbin/init-lib.sh
setup_network 192.168.100.9
ip route show default
`;

/** setup_network under `cmdline`, with a NIC per MAC in `macs`: its output and the resolv.conf it wrote (or null). */
async function setupNetwork(cmdline: string, ...macs: string[]) {
  const root = await busyboxRoot(['etc'], { 'proc/cmdline': `console=ttyS0 ${cmdline}\n` });
  try {
    const { code, out } = await runInRoot(root, SCRIPT, { net: true, setup: macs.map((mac, i) => `ip tuntap add mode tap eth${i} && ip link set eth${i} address ${mac}`).join(' && ') });
    assert.is(code, 0, out);
    let resolv: string | null = null;
    try { resolv = readFileSync(join(root, 'etc/resolv.conf'), 'utf8'); } catch { /* not written */ }
    return { out, resolv };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const net = { name: 'forge', guestIp: '192.168.100.3', ports: [443], expose: [] };

test('crosvm: one nameserver line per configured address, in order; the route via the bridge', async () => {
  const { out, resolv } = await setupNetwork(netCmdline({ ...net, hypervisor: 'crosvm', dns: ['1.1.1.1', '2606:4700:4700::1111'] }), '52:54:00:aa:bb:cc');
  assert.match(out, /network: eth0 192\.168\.100\.3\/24, default via 192\.168\.100\.1 dev eth0/, out);
  assert.match(out, /default via 192\.168\.100\.1 dev eth0/, out);
  assert.is(resolv, 'nameserver 1.1.1.1\nnameserver 2606:4700:4700::1111\n', out);
});

test("qemu: slirp's single resolver without dns, the configured ones with it", async () => {
  const macs = [guestMac(net.guestIp, 0), guestMac(net.guestIp, 1)];
  const slirp = await setupNetwork(netCmdline({ ...net, hypervisor: 'qemu' }), ...macs);
  assert.match(slirp.out, /default via 10\.0\.2\.2 dev eth1/, slirp.out);
  assert.is(slirp.resolv, 'nameserver 10.0.2.3\n', slirp.out);
  const set = await setupNetwork(netCmdline({ ...net, hypervisor: 'qemu', dns: ['9.9.9.9', '149.112.112.112'] }), ...macs);
  assert.is(set.resolv, 'nameserver 9.9.9.9\nnameserver 149.112.112.112\n', set.out);
});

test('no sovereign.dns: resolv.conf is left alone', async () => {
  const { resolv } = await setupNetwork(netCmdline({ ...net, hypervisor: 'crosvm' }), '52:54:00:aa:bb:cc');
  assert.is(resolv, null);
});

test.run();
