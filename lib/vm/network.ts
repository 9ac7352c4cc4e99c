// One network per device: the guest LAN every VM of a device shares, how each hypervisor wires it, and LAN exposure.
import type { Exposure } from '../config.ts';
import { VM_FILES } from './files.ts';

/** What the network wiring of one VM depends on (a subset of the start-script parameters). */
export interface NetParams {
  name: string;
  guestIp: string;
  ports: number[];
  expose: Exposure[];
  hypervisor: 'crosvm' | 'qemu';
  /** The guest's resolvers (device `dns`; qemu without it: slirp's). */
  dns?: string[];
}

/** The guest's /24 and its gateway (.1), shared by all VMs of a device: the original's 192.168.100.0/24 bridge. */
export function guestNet(guestIp: string): { prefix: string; gateway: string; subnet: string } {
  const prefix = guestIp.split('.').slice(0, 3).join('.');
  return { prefix, gateway: `${prefix}.1`, subnet: `${prefix}.0/24` };
}

/** This VM's TAP on a crosvm device (interface names are at most 15 bytes). */
export const tapName = (service: string) => `vm_${service}`.slice(0, 15);

/**
 * A stable, locally administered MAC per guest address and NIC (0: the device LAN, 1: qemu's uplink): on a
 * shared segment every VM needs its own (qemu's default is the same for all), and init finds its NICs by it.
 */
export function guestMac(guestIp: string, nic: 0 | 1): string {
  const hex = guestIp.split('.').slice(1).map((o) => Number(o).toString(16).padStart(2, '0'));
  return [nic ? '52:54:01' : '52:54:00', ...hex].join(':');
}

/**
 * qemu's per-VM user-mode uplink: outbound access, the loopback forwards and the exposed ports. Every VM
 * has its own (they never meet), so all use qemu's default 10.0.2.0/24; the guest LAN stays on the other NIC.
 */
export const QEMU_UPLINK = { ip: '10.0.2.15', gateway: '10.0.2.2', dns: '10.0.2.3', net: '10.0.2.0/24' } as const;

/** `sovereign.*` network parameters for the kernel command line, read by init-lib.sh setup_network. */
export function netCmdline(p: NetParams): string {
  const exposed = p.expose.length ? ` sovereign.expose=${p.expose.map((e) => e.port).join(',')}` : '';
  if (p.hypervisor === 'crosvm') {
    const dns = p.dns?.length ? ` sovereign.dns=${p.dns.join(',')}` : '';
    return `sovereign.net=tap sovereign.ip=${p.guestIp} sovereign.gw=${guestNet(p.guestIp).gateway}${dns}${exposed}`;
  }
  const u = QEMU_UPLINK;
  return `sovereign.net=qemu sovereign.ip=${p.guestIp} sovereign.mac=${guestMac(p.guestIp, 0)} ` +
    `sovereign.uplink=${u.ip} sovereign.upmac=${guestMac(p.guestIp, 1)} sovereign.gw=${u.gateway} sovereign.dns=${(p.dns ?? [u.dns]).join(',')}${exposed}`;
}

/**
 * Host ports for qemu's loopback forwards. Service port n (0-based in `ports`) of the service at config
 * position `index` is forwarded from 127.0.0.1:(20000 + index*100 + n), e.g. sql's 5432 -> 20100.
 * `SOVEREIGN_PORT_<SERVICE>_<PORT>` (e.g. SOVEREIGN_PORT_SQL_5432=15432) overrides it, when start.sh runs and
 * when `test` probes it. Loopback only: never reachable from the network (that is what `expose` is for).
 */
export const PORT_BASE = 20000;

export function portEnvName(service: string, port: number): string {
  return `SOVEREIGN_PORT_${service.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_${port}`;
}

export function defaultHostPort(index: number, portIndex: number): number {
  return PORT_BASE + index * 100 + portIndex;
}

/**
 * The qemu network of one VM, as sh lines adding to "$@" in start.sh.
 *
 * NIC 1 (`lan`) is on the device's guest LAN: a multicast group on the device's loopback that every VM of
 * the device joins (`-netdev socket,mcast=`). It needs no root, no bridge, TAP or firewall rule on the host,
 * and has no owner: any VM may start, stop or crash without touching the others' network, and nothing is left
 * behind to clean up. The group is derived from the device folder, so two devices (or checkouts) on one
 * machine get separate LANs; SOVEREIGN_LAN=<group>:<port> picks one by hand.
 * NIC 2 (`up`) is this VM's own user-mode network: outbound NAT, the loopback forwards and the exposed ports.
 */
export function qemuNetwork(p: NetParams & { index: number }): string {
  const u = QEMU_UPLINK;
  const fwd = p.ports.map((port, i) => `,hostfwd=tcp:127.0.0.1:\${${portEnvName(p.name, port)}:-${defaultHostPort(p.index, i)}}-${u.ip}:${port}`);
  const exposed = p.expose.map((e) => `,hostfwd=tcp:${e.address === '0.0.0.0' ? '' : e.address}:${e.hostPort}-${u.ip}:${e.port}`);
  // An override reaches hostfwd only as a port number: anything else (`0.0.0.0:15432`) could bind beyond loopback.
  const checks = p.ports.map((port) => {
    const v = portEnvName(p.name, port);
    return `case "\${${v}-}" in '') ;; *[!0-9]*|0*) echo "start.sh: ${v} must be a port number (1-65535), not '$${v}'" >&2; exit 2 ;; *) [ "$${v}" -le 65535 ] || { echo "start.sh: ${v} must be a port number (1-65535), not '$${v}'" >&2; exit 2; } ;; esac\n`;
  }).join('');
  return `${checks}# The device's guest LAN (${guestNet(p.guestIp).subnet}, shared by all its VMs): a multicast group on loopback,
# derived from the device folder (see lib/vm/network.ts for why this and not a bridge).
lan_sum=$(cd .. && pwd -P | cksum | cut -d ' ' -f 1)
lan="\${SOVEREIGN_LAN:-239.255.$(( lan_sum / 65536 % 256 )).$(( lan_sum / 256 % 254 + 1 )):$(( 40000 + lan_sum % 20000 ))}"
set -- "$@" -netdev "socket,id=lan,mcast=$lan,localaddr=127.0.0.1" -device virtio-net-pci,netdev=lan,mac=${guestMac(p.guestIp, 0)}
# This VM's uplink: outbound NAT, loopback forwards${p.expose.length ? ' and the ports exposed on the device\'s addresses' : ''}.
set -- "$@" -netdev "user,id=up,net=${u.net},host=${u.gateway},dns=${u.dns}${fwd.join('')}${exposed.join('')}" \\
  -device virtio-net-pci,netdev=up,mac=${guestMac(p.guestIp, 1)}
`;
}

/** The iptables comment tagging the DNAT rules of one VM: only these are ever deleted, and only by that VM. */
export const dnatTag = (service: string) => `sovereign-${service}`;

/**
 * Shell deleting every iptables rule (nat and filter) tagged with this VM's tag, and no other rule.
 * (iptables -S prints a rule as the arguments that add it; the tag has no spaces or quotes, so word splitting is
 * exact; the space after the tag keeps `sovereign-sql` from matching `sovereign-sql2`.)
 */
export function crosvmDropRules(service: string): string {
  return `for table in nat filter; do
  iptables -t $table -S 2>/dev/null | grep -E -e '--comment "?${dnatTag(service)}"? ' | sed -e 's/^-A /-D /' -e 's/"//g' | while read -r rule; do
    iptables -t $table $rule
  done
done`;
}

/**
 * What stopping a VM for good (stop, remove, and the restarts of start and push) runs on a crosvm device: its TAP
 * and its tagged rules go. Without the TAP those rules would forward the exposed ports to an address nobody
 * answers (a client's connection hangs instead of being refused); start adds them again. The bridge, forwarding
 * and NAT stay: other VMs use them. start.sh also leaves it in the VM's folder as teardown.sh, for the supervisor
 * to run when it gives up on the VM (crosvmNetwork).
 */
export function crosvmTeardown(service: string): string {
  return `${crosvmDropRules(service)}
ip link del ${tapName(service)} 2>/dev/null || true`;
}

/**
 * crosvm's network of one VM: the shared bridge with the gateway address, forwarding and NAT (each added only
 * when missing, never removed: other VMs use them), this VM's TAP, and DNAT from the uplink (the phone's Wi-Fi)
 * for its exposed ports. Its DNAT rules carry its own tag: they are rebuilt on every start, so a port no longer
 * exposed stops being forwarded, and deleted when the VM stops (crosvmTeardown); no other VM's rule is ever deleted.
 */
export function crosvmNetwork(p: NetParams): string {
  const { gateway, subnet } = guestNet(p.guestIp);
  const tag = dnatTag(p.name);
  const dnat = p.expose.map((e) => {
    const dst = e.address === '0.0.0.0' ? '' : ` -d ${e.address}`;
    return `iptables -t nat -A PREROUTING -i "$UPLINK"${dst} -p tcp --dport ${e.hostPort} -m comment --comment ${tag} -j DNAT --to-destination ${p.guestIp}:${e.port}
iptables -I FORWARD 3 -i "$UPLINK" -o "$BRIDGE" -p tcp -d ${p.guestIp} --dport ${e.port} -m comment --comment ${tag} -j ACCEPT`;
  });
  return `BRIDGE=vm_bridge
SUBNET=${subnet}
TAP=${tapName(p.name)}

# What stop runs to undo this VM's own network, for its supervisor to run when it gives up on the VM (not between
# restarts: each run of this script rebuilds it). Written before anything is made, so a half-done set-up is undone too.
cat > ${VM_FILES.teardown}.tmp <<'EOF'
${crosvmTeardown(p.name)}
EOF
mv -f ${VM_FILES.teardown}.tmp ${VM_FILES.teardown}

# The bridge, forwarding, routing and NAT are shared by every VM on the device: each is added only
# when missing, and nothing here (or in stop) removes them, so other running VMs keep their network.
ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
ip addr show dev "$BRIDGE" | grep -q "inet ${gateway}/24" || ip addr add ${gateway}/24 dev "$BRIDGE"
ip link set "$BRIDGE" up
echo 1 > /proc/sys/net/ipv4/ip_forward
echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter
# Android routes by policy rules per uplink: look in main first, and give main the uplink's default route.
ip rule show | grep -q '^1:.*lookup main' || ip rule add from all lookup main pref 1
if ! ip route show table main | grep -q '^default'; then
  route=$(ip route show table "$UPLINK" 2>/dev/null | grep '^default' | head -n 1 || true)
  [ -z "$route" ] || ip route add $route table main || true
fi
iptables -t nat -C POSTROUTING -s "$SUBNET" -o "$UPLINK" -j MASQUERADE 2>/dev/null ||
  iptables -t nat -A POSTROUTING -s "$SUBNET" -o "$UPLINK" -j MASQUERADE
iptables -C FORWARD -i "$BRIDGE" -o "$UPLINK" -j ACCEPT 2>/dev/null ||
  iptables -I FORWARD 1 -i "$BRIDGE" -o "$UPLINK" -j ACCEPT
iptables -C FORWARD -i "$UPLINK" -o "$BRIDGE" -m state --state RELATED,ESTABLISHED -j ACCEPT 2>/dev/null ||
  iptables -I FORWARD 2 -i "$UPLINK" -o "$BRIDGE" -m state --state RELATED,ESTABLISHED -j ACCEPT

# This VM's exposed ports: its own tagged rules (and only those) are dropped, then added for what is exposed now.
${crosvmDropRules(p.name)}
${dnat.length ? dnat.join('\n') : '# (none: this VM exposes no port)'}

# This VM's own TAP: recreated fresh, attached to the shared bridge.
ip link del "$TAP" 2>/dev/null || true
ip tuntap add mode tap "$TAP"
ip link set "$TAP" master "$BRIDGE"
ip link set "$TAP" up
`;
}
