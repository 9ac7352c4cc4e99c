// Choosing qemu's accelerator on a device: KVM only when a short probe boot proves it works, else TCG.
import type { DeviceSession } from '../device/device.ts';
import { shQuote } from '../device/shell.ts';
import { archSpec } from '../arch.ts';

export type Accel = 'kvm' | 'tcg';

/** Seconds a probe boot may take before KVM counts as hanging. */
const PROBE_SECONDS = 15;

/**
 * /dev/kvm can exist and still abort or hang real guests (nested or paravirtual KVM), so its presence
 * proves nothing: boot the service's kernel under KVM with no root disk and accept KVM only when the
 * kernel gets as far as looking for its root device. The verdict is remembered on the device
 * (`<root>/vm/.accel`), so the probe runs once per device; delete that file to probe again.
 * `SOVEREIGN_ACCEL=kvm|tcg` in sovereign's environment skips the probe.
 */
export async function chooseAccel(session: DeviceSession, service: string, opts: { env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {}): Promise<Accel> {
  const forced = (opts.env ?? process.env).SOVEREIGN_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return forced;
  if (session.device.hypervisor !== 'qemu') return 'kvm';
  const dir = session.serviceDir(service);
  const { binary, machine } = archSpec(session.device.arch).qemu;
  const qemu = `${binary} -machine ${machine}`;
  const script = `cd ${shQuote(dir)} || exit 1
verdict=../.accel
if [ -f "$verdict" ]; then cat "$verdict"; exit 0; fi
[ -f kernel ] || { echo tcg; exit 0; }
accel=tcg
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
  out=$(timeout ${PROBE_SECONDS} ${qemu} -accel kvm -cpu max -m 256 -nographic -no-reboot -kernel kernel -append 'console=ttyS0 console=ttyAMA0 panic=-1' </dev/null 2>&1 | tail -c 65536 || true)
  case $out in *'Cannot open root device'*|*'Unable to mount root'*|*'Kernel panic'*) accel=kvm ;; esac
fi
echo $accel > "$verdict.$$" && mv "$verdict.$$" "$verdict"
echo $accel`;
  const { stdout } = await session.run(script, { signal: opts.signal, nothrow: true, timeoutMs: (PROBE_SECONDS + 15) * 1000 });
  return stdout.trim() === 'kvm' ? 'kvm' : 'tcg';
}
