// start.sh: the POSIX sh script that boots one service's VM on its device, rendered for qemu or crosvm.
import type { Device, Service } from '../config.ts';
import { shQuote } from '../device/shell.ts';
import { VM_FILES } from './files.ts';

/**
 * Everything start.sh depends on, and nothing else: this is what the start-script key hashes.
 * No secrets: they reach the guest as the read-only `secrets.env` disk, never on a command line.
 */
export interface StartScriptParams {
  name: string;
  /** The service's 1-based position in the config: picks its default host ports. */
  index: number;
  memory: number;
  cpus: number;
  ports: number[];
  guestIp: string;
  cmdline: string;
  hypervisor: Device['hypervisor'];
  arch: Device['arch'];
}

export function startScriptParams(service: Service, device: Device): StartScriptParams {
  const { name, index, memory, cpus, ports, guestIp, cmdline } = service;
  return { name, index, memory, cpus, ports, guestIp, cmdline, hypervisor: device.hypervisor, arch: device.arch };
}

/**
 * Host ports for qemu's user-mode networking. Service port n (0-based in `ports`) of the service at
 * config position `index` is forwarded from 127.0.0.1:(20000 + index*100 + n), e.g. sql's 5432 -> 20100.
 * `SOVEREIGN_PORT_<SERVICE>_<PORT>` (e.g. SOVEREIGN_PORT_SQL_5432=15432) overrides it, when start.sh runs and
 * when `test` probes it. Loopback only: never reachable from the network.
 */
export const PORT_BASE = 20000;

export function portEnvName(service: string, port: number): string {
  return `SOVEREIGN_PORT_${service.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_${port}`;
}

export function defaultHostPort(index: number, portIndex: number): number {
  return PORT_BASE + index * 100 + portIndex;
}

/** The host port where the guest's `port` answers (qemu devices), honouring the environment override. */
export function hostPort(p: Pick<StartScriptParams, 'name' | 'index' | 'ports'>, port: number, env: NodeJS.ProcessEnv = process.env): number {
  const override = Number(env[portEnvName(p.name, port)]);
  if (Number.isInteger(override) && override > 0 && override < 65536) return override;
  const i = p.ports.indexOf(port);
  return defaultHostPort(p.index, i < 0 ? 0 : i);
}

/** This VM's TAP on a crosvm device (interface names are at most 15 bytes). */
export const tapName = (service: string) => `vm_${service}`.slice(0, 15);

/** The guest's /24 and its gateway (.1), shared by all VMs of a device: the original's 192.168.100.0/24 bridge. */
export function guestNet(guestIp: string): { prefix: string; gateway: string; subnet: string } {
  const prefix = guestIp.split('.').slice(0, 3).join('.');
  return { prefix, gateway: `${prefix}.1`, subnet: `${prefix}.0/24` };
}

/** Renders start.sh for the device's hypervisor. */
export function renderStartScript(p: StartScriptParams): string {
  return p.hypervisor === 'crosvm' ? renderCrosvm(p) : renderQemu(p);
}

/**
 * Kernel command line. `sovereign.*` tells the guest's init what it cannot guess: how its network is
 * wired and which disks hold /data and the secrets (nvme on qemu, virtio on crosvm).
 */
export function kernelCmdline(p: StartScriptParams): string {
  const { gateway } = guestNet(p.guestIp);
  const qemu = p.hypervisor === 'qemu';
  const console = qemu && p.arch === 'aarch64' ? 'ttyAMA0' : 'ttyS0';
  const disk = (n: number) => (qemu ? `/dev/nvme${n}n1` : `/dev/vd${'abc'[n]}`);
  return [
    qemu ? '' : 'earlycon',
    `console=${console} root=${disk(0)} rw panic=-1 init=/sbin/init`,
    `sovereign.net=${qemu ? 'user' : 'tap'} sovereign.ip=${p.guestIp} sovereign.gw=${gateway}`,
    `sovereign.data=${disk(1)} sovereign.secrets=${disk(2)}`,
    p.cmdline,
  ].filter(Boolean).join(' ');
}

const header = (p: StartScriptParams, what: string) => `#!/bin/sh
# start.sh for ${p.name} (${what}), rendered by sovereign: edit the config, not this file.
# Runs in the service's device dir (rootfs.img, data.img, kernel, secrets.env, start.sh); execs the
# hypervisor, so the pid the caller records is the VM's. Sources no env file; puts no secret on a command line.
set -eu
cd "$(dirname "$0")"
`;

function renderQemu(p: StartScriptParams): string {
  const { prefix, gateway, subnet } = guestNet(p.guestIp);
  const dns = p.guestIp === `${prefix}.254` ? `${prefix}.253` : `${prefix}.254`; // slirp's default .3 would take forge's address
  const fwd = p.ports.map((port, i) => `,hostfwd=tcp:127.0.0.1:\${${portEnvName(p.name, port)}:-${defaultHostPort(p.index, i)}}-${p.guestIp}:${port}`).join('');
  const arm = p.arch === 'aarch64';
  const nvme = (file: string, id: string, extra = '') =>
    `-drive file=${file},if=none,id=${id},format=raw${extra} -device nvme,drive=${id},serial=${id}`;
  return `${header(p, `qemu, ${p.arch}`)}
# KVM only when the caller's probe found it working (/dev/kvm can exist and still hang guests).
accel="\${SOVEREIGN_ACCEL:-tcg}"
case "$accel" in
  kvm|tcg) ;;
  *) echo "start.sh: SOVEREIGN_ACCEL must be kvm or tcg, not $accel" >&2; exit 2 ;;
esac

set -- -name sovereign-${p.name} -accel "$accel" -machine ${arm ? 'virt' : 'q35'} -cpu max -m ${p.memory} -smp ${p.cpus} \\
  -nographic -no-reboot \\
  -kernel ${VM_FILES.kernel} -append ${shQuote(kernelCmdline(p))} \\
  ${nvme(VM_FILES.rootfs, 'rootfs')} \\
  ${nvme(VM_FILES.data, 'data')} \\
  -netdev "user,id=net0,net=${subnet},host=${gateway},dns=${dns},dhcpstart=${p.guestIp}${fwd}" \\
  -device virtio-net-pci,netdev=net0
# The secrets disk exists only for services that declare secrets; it stays the third disk.
if [ -f ${VM_FILES.secrets} ]; then
  set -- "$@" ${nvme(VM_FILES.secrets, 'secrets', ',readonly=on')}
fi
${arm ? '' : `# The monitor on two FIFOs: stop asks the guest to shut down cleanly (sendkey ctrl-alt-delete -> SIGINT to
# its init) with nothing more than a shell, on any device. (The arm virt machine has no keyboard for it.)
rm -f ${VM_FILES.monitor}.in ${VM_FILES.monitor}.out && mkfifo ${VM_FILES.monitor}.in ${VM_FILES.monitor}.out
set -- "$@" -monitor pipe:${VM_FILES.monitor}
`}exec qemu-system-${arm ? 'aarch64' : 'x86_64'} "$@"
`;
}

function renderCrosvm(p: StartScriptParams): string {
  const { gateway, subnet } = guestNet(p.guestIp);
  const tap = tapName(p.name);
  return `${header(p, 'crosvm, Android')}
export LD_LIBRARY_PATH=/apex/com.android.virt/lib64:/system/lib64
CROSVM="\${SOVEREIGN_CROSVM:-$(command -v crosvm || echo /apex/com.android.virt/bin/crosvm)}"
UPLINK="\${SOVEREIGN_UPLINK:-wlan0}"
BRIDGE=vm_bridge
SUBNET=${subnet}
TAP=${tap}

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

# This VM's own TAP: recreated fresh, attached to the shared bridge.
ip link del "$TAP" 2>/dev/null || true
ip tuntap add mode tap "$TAP"
ip link set "$TAP" master "$BRIDGE"
ip link set "$TAP" up

# Android's low-memory killer must not pick the VM (inherited across exec).
echo -1000 > /proc/self/oom_score_adj 2>/dev/null || true
rm -f vm.sock
# --disable-sandbox: crosvm's minijail setup is not available to a root shell on stock Android (open TODO, as in the original).
set -- run --disable-sandbox --mem ${p.memory} --cpus ${p.cpus} \\
  --block ${VM_FILES.rootfs},root --block ${VM_FILES.data} \\
  --params ${shQuote(kernelCmdline(p))} \\
  --serial type=stdout --net tap-name="$TAP" --socket vm.sock
if [ -f ${VM_FILES.secrets} ]; then
  set -- "$@" --block ${VM_FILES.secrets},ro
fi
exec "$CROSVM" "$@" ${VM_FILES.kernel}
`;
}

/** Environment start.sh reads, passed through from sovereign's own environment when set. */
const PASSTHROUGH = ['SOVEREIGN_CROSVM', 'SOVEREIGN_UPLINK'];

/**
 * The command that runs start.sh on the device (given to spawnDetached): the chosen accelerator and any
 * port/crosvm overrides from sovereign's environment as assignments (never secrets), then `exec`, so the
 * recorded pid stays the hypervisor's.
 */
export function startCommand(p: Pick<StartScriptParams, 'name' | 'ports'>, accel: 'kvm' | 'tcg', env: NodeJS.ProcessEnv = process.env): string {
  const vars = [`SOVEREIGN_ACCEL=${accel}`];
  for (const port of p.ports) {
    const name = portEnvName(p.name, port);
    const v = Number(env[name]);
    if (Number.isInteger(v) && v > 0 && v < 65536) vars.push(`${name}=${v}`);
  }
  for (const name of PASSTHROUGH) if (env[name]) vars.push(`${name}=${shQuote(env[name]!)}`);
  return `${vars.join(' ')} exec sh ${VM_FILES.script}`;
}
