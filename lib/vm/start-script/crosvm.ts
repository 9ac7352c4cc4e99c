// The crosvm start.sh template for rooted Android: the virt APEX, the device network (lib/vm/network.ts: shared vm_bridge, NAT, one TAP per VM, DNAT for exposed ports), the control socket.
import { shQuote } from '../../device/shell.ts';
import { VM_FILES } from '../files.ts';
import { crosvmNetwork } from '../network.ts';
import { header, kernelCmdline, type StartScriptParams } from './params.ts';

/** The virt APEX's libraries: crosvm from /apex does not start without them. */
const LIBS = '/apex/com.android.virt/lib64:/system/lib64';

/**
 * What stop runs (with $pid the VM's) through crosvm's control socket, using the binary the VM runs
 * (from /proc, so stop needs no path): `powerbtn` lets the guest's init shut down cleanly; `stop` ends
 * the VM from crosvm's side before stop falls back to TERM.
 */
export const crosvmControl = {
  shutdown: `[ -S ${VM_FILES.socket} ] && LD_LIBRARY_PATH=${LIBS} timeout 5 "$(readlink /proc/$pid/exe)" powerbtn ${VM_FILES.socket} >/dev/null 2>&1`,
  exit: `[ -S ${VM_FILES.socket} ] && LD_LIBRARY_PATH=${LIBS} timeout 5 "$(readlink /proc/$pid/exe)" stop ${VM_FILES.socket} >/dev/null 2>&1`,
};

export function renderCrosvm(p: StartScriptParams): string {
  return `${header(p, 'crosvm, Android')}
export LD_LIBRARY_PATH=${LIBS}
CROSVM="\${SOVEREIGN_CROSVM:-$(command -v crosvm || echo /apex/com.android.virt/bin/crosvm)}"
UPLINK="\${SOVEREIGN_UPLINK:-wlan0}"
${crosvmNetwork(p)}

# Android's phantom-process killer ends a root shell's long-running children; turn it off (device-wide,
# idempotent; the settings do not exist before Android 12, hence || true).
device_config set_sync_disabled_for_tests persistent >/dev/null 2>&1 || true
device_config put activity_manager max_phantom_processes 2147483647 >/dev/null 2>&1 || true
settings put global settings_enable_monitor_phantom_procs false >/dev/null 2>&1 || true

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
