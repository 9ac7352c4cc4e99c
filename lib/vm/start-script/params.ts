// What every start.sh template shares: its parameters, host ports, the guest network, the kernel command line and the header.
import type { Device, Service } from '../../config.ts';

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

export const header = (p: StartScriptParams, what: string) => `#!/bin/sh
# start.sh for ${p.name} (${what}), rendered by sovereign: edit the config, not this file.
# Runs in the service's device dir (rootfs.img, data.img, kernel, secrets.env, start.sh); execs the
# hypervisor, so the pid the caller records is the VM's. Sources no env file; puts no secret on a command line.
set -eu
cd "$(dirname "$0")"
`;
