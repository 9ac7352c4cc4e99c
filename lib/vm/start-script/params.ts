// What every start.sh template shares: its parameters, host ports, the kernel command line and the header.
import type { Device, Exposure, Service } from '../../config.ts';
import { archSpec } from '../../arch.ts';
import { defaultHostPort, netCmdline, portEnvName } from '../network.ts';

export { defaultHostPort, guestNet, PORT_BASE, portEnvName, tapName } from '../network.ts';

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
  /** Ports reachable from the device's LAN addresses (config `expose`; none by default). */
  expose: Exposure[];
  guestIp: string;
  cmdline: string;
  hypervisor: Device['hypervisor'];
  arch: Device['arch'];
  /** The guest's resolvers (device `dns`): always on crosvm, on qemu only when configured (else slirp's). */
  dns?: string[];
}

export function startScriptParams(service: Service, device: Device): StartScriptParams {
  const { name, index, memory, cpus, ports, expose, guestIp, cmdline } = service;
  // dns only when set: a qemu device without it keeps its key (and slirp's resolver).
  return { name, index, memory, cpus, ports, expose, guestIp, cmdline, hypervisor: device.hypervisor, arch: device.arch, ...(device.dns ? { dns: device.dns } : {}) };
}

/** The host port where the guest's `port` answers (qemu devices), honouring the environment override. */
export function hostPort(p: Pick<StartScriptParams, 'name' | 'index' | 'ports'>, port: number, env: NodeJS.ProcessEnv = process.env): number {
  const override = Number(env[portEnvName(p.name, port)]);
  if (Number.isInteger(override) && override > 0 && override < 65536) return override;
  const i = p.ports.indexOf(port);
  return defaultHostPort(p.index, i < 0 ? 0 : i);
}

/**
 * Kernel command line. `sovereign.*` tells the guest's init what it cannot guess: how its network is
 * wired (lib/vm/network.ts) and which disks hold /data and the secrets (nvme on qemu, virtio on crosvm).
 */
export function kernelCmdline(p: StartScriptParams): string {
  const qemu = p.hypervisor === 'qemu';
  // crosvm's serial is a 16550 (ttyS0) on every architecture; qemu's depends on the machine.
  const console = qemu ? archSpec(p.arch).qemu.console : 'ttyS0';
  const disk = (n: number) => (qemu ? `/dev/nvme${n}n1` : `/dev/vd${'abc'[n]}`);
  return [
    qemu ? '' : 'earlycon',
    `console=${console} root=${disk(0)} rw panic=-1 init=/sbin/init`,
    netCmdline(p),
    `sovereign.data=${disk(1)} sovereign.secrets=${disk(2)}`,
    p.cmdline,
  ].filter(Boolean).join(' ');
}

export const header = (p: StartScriptParams, what: string) => `#!/bin/sh
# start.sh for ${p.name} (${what}), rendered by sovereign: edit the config, not this file.
# Runs in the service's device dir (rootfs.img, data.img, kernel, secrets.env, start.sh); execs the
# hypervisor, so the pid the caller records is the VM's. Sources no env file; puts no secret on a command line.
set -eu
cd "$(dirname "$0")"
`;
