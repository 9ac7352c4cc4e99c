// The qemu start.sh template (machine, console and binary from lib/arch.ts): the device's shared LAN and an uplink (lib/vm/network.ts), NVMe disks, a monitor FIFO for clean shutdown.
import { shQuote } from '../../device/shell.ts';
import { VM_FILES } from '../files.ts';
import { qemuNetwork } from '../network.ts';
import { header, kernelCmdline, type StartScriptParams } from './params.ts';
import { archSpec } from '../../arch.ts';

/**
 * What stop runs (with $pid the VM's) to ask the guest to shut down: ctrl-alt-delete through the monitor
 * FIFO makes the guest kernel send SIGINT to init. The write is bounded: a FIFO without its reader blocks forever.
 * (The arm virt machine has no keyboard and no FIFO: its stop goes on to TERM.)
 */
export const qemuControl = {
  shutdown: `[ -p ${VM_FILES.monitor}.in ] && timeout 2 sh -c 'echo "sendkey ctrl-alt-delete" > ${VM_FILES.monitor}.in' 2>/dev/null`,
  exit: undefined,
};

export function renderQemu(p: StartScriptParams): string {
  const arch = archSpec(p.arch).qemu;
  const nvme = (file: string, id: string, extra = '') =>
    `-drive file=${file},if=none,id=${id},format=raw${extra} -device nvme,drive=${id},serial=${id}`;
  return `${header(p, `qemu, ${p.arch}`)}
# KVM only when the caller's probe found it working (/dev/kvm can exist and still hang guests).
accel="\${SOVEREIGN_ACCEL:-tcg}"
case "$accel" in
  kvm|tcg) ;;
  *) echo "start.sh: SOVEREIGN_ACCEL must be kvm or tcg, not $accel" >&2; exit 2 ;;
esac

set -- -name sovereign-${p.name} -accel "$accel" -machine ${arch.machine} -cpu max -m ${p.memory} -smp ${p.cpus} \\
  -nographic -no-reboot \\
  -kernel ${VM_FILES.kernel} -append ${shQuote(kernelCmdline(p))} \\
  ${nvme(VM_FILES.rootfs, 'rootfs')} \\
  ${nvme(VM_FILES.data, 'data')}
${qemuNetwork(p)}${arch.devices.length ? `set -- "$@"${arch.devices.map((d) => ` -device ${d}`).join('')}\n` : ''}# The secrets disk exists only for services that declare secrets; it stays the third disk.
if [ -f ${VM_FILES.secrets} ]; then
  set -- "$@" ${nvme(VM_FILES.secrets, 'secrets', ',readonly=on')}
fi
# The monitor on two FIFOs: stop asks the guest to shut down cleanly (sendkey ctrl-alt-delete -> SIGINT to
# its init) with nothing more than a shell, on any device.
rm -f ${VM_FILES.monitor}.in ${VM_FILES.monitor}.out && mkfifo ${VM_FILES.monitor}.in ${VM_FILES.monitor}.out
set -- "$@" -monitor pipe:${VM_FILES.monitor}
exec ${arch.binary} "$@"
`;
}
