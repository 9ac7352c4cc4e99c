// The crosvm start.sh template for rooted Android: the virt APEX, the device network (lib/vm/network.ts: shared vm_bridge, NAT, one TAP per VM, DNAT for exposed ports), the control socket.
import { shQuote } from '../../device/shell.ts';
import { VM_FILES } from '../files.ts';
import { crosvmNetwork } from '../network.ts';
import { header, kernelCmdline, type StartScriptParams } from './params.ts';

export function renderCrosvm(p: StartScriptParams): string {
  return `${header(p, 'crosvm, Android')}
export LD_LIBRARY_PATH=/apex/com.android.virt/lib64:/system/lib64
CROSVM="\${SOVEREIGN_CROSVM:-$(command -v crosvm || echo /apex/com.android.virt/bin/crosvm)}"
UPLINK="\${SOVEREIGN_UPLINK:-wlan0}"
${crosvmNetwork(p)}
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
