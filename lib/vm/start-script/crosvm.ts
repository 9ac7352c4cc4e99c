// The crosvm start.sh template for rooted Android: the virt APEX, the shared vm_bridge with NAT, one TAP per VM, the control socket.
import { shQuote } from '../../device/shell.ts';
import { VM_FILES } from '../files.ts';
import { guestNet, header, kernelCmdline, tapName, type StartScriptParams } from './params.ts';

export function renderCrosvm(p: StartScriptParams): string {
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
