// Autostart: boot.sh (starts the deployed VMs in dependsOn order under their supervisors) and the boot hook that runs it: Magisk/KernelSU service.d on Android, a systemd unit on a Linux box (which also runs halt.sh at shutdown).
import { posix } from 'node:path';
import type { Config, Device, Service } from '../config.ts';
import type { DeviceSession } from '../device/device.ts';
import { detachScript } from '../device/session.ts';
import { shQuote } from '../device/shell.ts';
import { UserError } from '../error.ts';
import { DEVICE_FILES, VM_FILES } from './files.ts';
import { ALIVE_FN, devicePath, stopScript, stopSeconds } from './process.ts';
import { installSupervisor, supervisorCommand } from './supervisor.ts';

/** Where the boot hook goes, per transport (the local device has no boot of its own to hook). */
export const HOOKS = {
  adb: '/data/adb/service.d/sovereign.sh',
  ssh: '/etc/systemd/system/sovereign-vms.service',
} as const;

/** Seconds boot.sh waits for Android's sys.boot_completed before it starts the VMs anyway. */
const BOOT_WAIT_SECONDS = 600;

/** The config's services, every one after the services it depends on (config order otherwise). */
export function bootOrder(config: Config): Service[] {
  const out: Service[] = [];
  const seen = new Set<string>();
  const visit = (s: Service) => {
    if (seen.has(s.name)) return;
    seen.add(s.name);
    for (const d of s.dependsOn) visit(config.services.get(d)!);
    out.push(s);
  };
  for (const s of config.services.values()) visit(s);
  return out;
}

/**
 * boot.sh, run from the boot hook in the device root. It starts each deployed VM (start.sh and rootfs.img
 * present) the way `sovereign start` does — under supervise.sh with the device's accelerator verdict — and
 * waits for its ready marker before starting the VMs that depend on it; a VM whose dependency did not get
 * ready is not started. VMs read their secrets from their own 0600 secrets.env disk: none is on a command
 * line or in boot.log. A VM already running is left alone.
 */
export function renderBootScript(config: Config, device: Device): string {
  const calls = bootOrder(config).map((s) => [
    'start_vm', s.name, String(s.startTimeout), shQuote(s.readyMarker), shQuote(s.dependsOn.join(' ')),
    ...s.failureMarkers.filter(Boolean).map(shQuote),
  ].join(' '));
  // The accelerator verdict `sovereign start` probed and stored; tcg when none was made yet.
  const env = device.hypervisor === 'qemu' ? ['SOVEREIGN_ACCEL="$(cat ../.accel 2>/dev/null || echo tcg)"'] : [];
  return `#!/bin/sh
# boot.sh for device ${device.name}, rendered by \`sovereign autostart --enable\`: starts the deployed VMs in
# dependsOn order, each under supervise.sh, as \`sovereign start\` does. Re-run autostart --enable after
# changing services in the config. Logs to boot.log here; no secret is ever on a command line or in a log.
set -u
cd "$(dirname "$0")" || exit 1
# An absolute path: log is also called from inside a VM's folder.
boot_log="$(pwd)/boot.log"
log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) boot: $*" >> "$boot_log"; }
${ALIVE_FN}
ready=" "

# Android: wait until the system has booted (the virt APEX, netd and wlan0 come up late).
if command -v getprop >/dev/null 2>&1; then
  i=0
  while [ "$(getprop sys.boot_completed)" != 1 ] && [ $i -lt ${BOOT_WAIT_SECONDS} ]; do sleep 1; i=$((i + 1)); done
  log "sys.boot_completed=$(getprop sys.boot_completed) after \${i}s"
fi

# start_vm NAME TIMEOUT READY_MARKER "DEPENDENCIES" [FAILURE_MARKER…]
start_vm() {
  name=$1 timeout=$2 marker=$3 deps=$4
  shift 4
  dir=vm/$name
  if [ ! -f "$dir/${VM_FILES.script}" ] || [ ! -f "$dir/${VM_FILES.rootfs}" ]; then log "$name: not deployed here, skipped"; return 0; fi
  for d in $deps; do
    case $ready in *" $d "*) ;; *) log "$name: not started: its dependency $d is not ready"; return 1 ;; esac
  done
  (
    cd "$dir" || exit 1
    if vm_pid >/dev/null; then log "$name: already running"; exit 0; fi
    rm -f ${VM_FILES.log} ${VM_FILES.prevLog} ${VM_FILES.pid} ${VM_FILES.socket} ${VM_FILES.supervisorState}
${detachScript(supervisorCommand(env, `../../${DEVICE_FILES.supervisor}`), { log: VM_FILES.supervisorLog, pidFile: VM_FILES.supervisorPid }).replace(/^/gm, '    ')}
    log "$name: started under its supervisor"
  ) || return 1
  i=0
  while [ $i -lt "$timeout" ]; do
    if grep -qF -- "$marker" "$dir/${VM_FILES.log}" 2>/dev/null; then log "$name: ready after \${i}s"; ready="$ready$name "; return 0; fi
    for f in "$@"; do
      if grep -qF -- "$f" "$dir/${VM_FILES.log}" 2>/dev/null; then log "$name: boot failed (\\"$f\\" in its console log)"; return 1; fi
    done
    sleep 1
    i=$((i + 1))
  done
  log "$name: not ready after \${timeout}s"
  return 1
}

log "starting the deployed VMs: ${bootOrder(config).map((s) => s.name).join(' ')}"
${calls.join('\n')}
log "done; ready:$ready"
`;
}

/**
 * halt.sh: stops the VMs in reverse dependsOn order exactly as `sovereign stop` does (the supervisor first, then the
 * guest's clean shutdown, then TERM, then KILL), logging each outcome to boot.log. The systemd unit runs it when
 * the box shuts down, so a reboot does not kill the VMs mid-write. Android has no shutdown hook for it.
 */
export function renderHaltScript(config: Config, device: Device): string {
  const order = bootOrder(config).reverse();
  const fns = order.map((s, i) => `# ${s.name}: prints "<outcome> <pid>"\nstop_${i}() {\ncd vm/${s.name} 2>/dev/null || exit 0\n${stopScript(device.hypervisor, s.name).script}\n}`);
  return `#!/bin/sh
# halt.sh for device ${device.name}, rendered by \`sovereign autostart --enable\`: stops the VMs in reverse dependsOn
# order as \`sovereign stop\` does. Logs to boot.log here.
set -u
cd "$(dirname "$0")" || exit 1
boot_log="$(pwd)/boot.log"
log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) halt: $*" >> "$boot_log"; }
${ALIVE_FN}

${fns.join('\n\n')}

log "stopping the VMs: ${order.map((s) => s.name).join(' ')}"
${order.map((s, i) => `r=$(stop_${i}); log "${s.name}: \${r:-not deployed here}"`).join('\n')}
log "done"
`;
}

/** The boot hook for the device's transport, which runs boot.sh at `bootScript`. */
export function renderHook(device: Device, bootScript: string, config: Config): string {
  if (device.transport === 'adb') {
    return `#!/system/bin/sh
# Installed by \`sovereign autostart --enable\`: Magisk/KernelSU run service.d scripts late in boot, as root.
# boot.sh waits for sys.boot_completed, then starts the deployed VMs.
exec sh ${shQuote(bootScript)} </dev/null >/dev/null 2>&1
`;
  }
  const timeout = bootOrder(config).reduce((t, s) => t + s.startTimeout, 60);
  const halt = posix.join(posix.dirname(bootScript), DEVICE_FILES.halt);
  return `# Installed by \`sovereign autostart --enable\`: starts the deployed VMs at boot, in dependsOn order.
[Unit]
Description=sovereign VMs (started by ${bootScript})
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh ${bootScript}
TimeoutStartSec=${timeout}
# At shutdown (before the network goes): each VM's guest shuts down cleanly, as \`sovereign stop\` does it.
ExecStop=/bin/sh ${halt}
TimeoutStopSec=${config.services.size * stopSeconds() + 30}
# The VMs' supervisors outlive boot.sh: stopping this unit must not kill them (use sovereign stop).
KillMode=process

[Install]
WantedBy=multi-user.target
`;
}

export interface AutostartResult {
  device: string;
  enabled: boolean;
  hook: string;
  bootScript: string;
  /** The services boot.sh starts, in order (those deployed on the device at boot). */
  order: string[];
}

function hookPath(device: Device): string {
  if (device.transport === 'local') {
    throw new UserError(`autostart is for devices with a boot of their own (adb phones, ssh boxes); '${device.name}' is this machine's folder`, {
      code: 'usage', hint: 'pass --device NAME for an adb or ssh device from sovereign.config.ts',
    });
  }
  return HOOKS[device.transport];
}

/** Installs supervise.sh, boot.sh (and halt.sh on a Linux box) and the boot hook on the device (each written atomically). */
export async function enableAutostart(session: DeviceSession, config: Config): Promise<AutostartResult> {
  const { device } = session;
  const hook = hookPath(device);
  if (device.transport === 'ssh' && (await session.run('command -v systemctl', { nothrow: true })).code !== 0) {
    throw new UserError(`device '${device.name}' has no systemctl: autostart on a Linux box needs systemd`, { code: 'environment', hint: 'start the VMs from your init system with: sh <root>/boot.sh' });
  }
  await installSupervisor(session);
  const bootScript = devicePath(session, 'boot');
  await session.writeFile(bootScript, renderBootScript(config, device), 0o755);
  if (device.transport === 'ssh') await session.writeFile(devicePath(session, 'halt'), renderHaltScript(config, device), 0o755);
  await session.writeFile(hook, renderHook(device, bootScript, config), device.transport === 'adb' ? 0o755 : 0o644);
  if (device.transport === 'ssh') await session.run('systemctl daemon-reload && systemctl enable sovereign-vms.service');
  return { device: device.name, enabled: true, hook, bootScript, order: bootOrder(config).map((s) => s.name) };
}

/** Removes the boot hook, boot.sh and halt.sh; running VMs keep running. Idempotent. */
export async function disableAutostart(session: DeviceSession): Promise<AutostartResult> {
  const { device } = session;
  const hook = hookPath(device);
  const bootScript = devicePath(session, 'boot');
  const unit = device.transport === 'ssh' ? 'systemctl disable sovereign-vms.service >/dev/null 2>&1 || true\n' : '';
  await session.run(`${unit}rm -f ${shQuote(hook)} ${shQuote(bootScript)} ${shQuote(devicePath(session, 'halt'))}${unit ? ' && systemctl daemon-reload' : ''}`);
  return { device: device.name, enabled: false, hook, bootScript, order: [] };
}
