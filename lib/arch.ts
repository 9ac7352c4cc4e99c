// What a device's CPU architecture decides, in one place: Debian's name for it, the image platform, qemu's
// machine and console, the guest drivers its kernel must load. A new architecture is a new entry here.
import type { Device } from './config.ts';

export type Arch = Device['arch'];

export interface ArchSpec {
  /** Debian's architecture name: debootstrap/mmdebstrap `--arch`, apt's APT::Architecture, `{arch}` in a kernel package name. */
  deb: 'amd64' | 'arm64';
  /** The OCI platform of images built for it (`docker build/import --platform`). */
  platform: string;
  qemu: {
    binary: string;
    /** The Debian package that has `binary`. */
    package: string;
    machine: string;
    /** The serial console the guest kernel writes to under this machine. */
    console: string;
    /**
     * Devices added so stop can ask the guest to shut down: `sendkey ctrl-alt-delete` on the monitor needs a
     * keyboard. q35 has its PS/2 one; arm virt has none (and its power button needs gpio-keys, which Debian's
     * cloud kernel lacks), so it gets a virtio keyboard, whose driver is in `guestModules`.
     */
    devices: string[];
  };
  /**
   * Drivers a guest needs that Debian's cloud kernel for this architecture builds as modules: virtio over
   * PCI and the virtio NIC (and, on arm, the virtio keyboard of the clean stop). Their dependencies are
   * followed through each module's own `depends=`.
   */
  guestModules: string[];
}

export const ARCHES: Record<Arch, ArchSpec> = {
  x86_64: {
    deb: 'amd64',
    platform: 'linux/amd64',
    qemu: { binary: 'qemu-system-x86_64', package: 'qemu-system-x86', machine: 'q35', console: 'ttyS0', devices: [] },
    guestModules: ['virtio_pci', 'virtio_net'],
  },
  aarch64: {
    deb: 'arm64',
    platform: 'linux/arm64',
    qemu: { binary: 'qemu-system-aarch64', package: 'qemu-system-arm', machine: 'virt', console: 'ttyAMA0', devices: ['virtio-keyboard-pci'] },
    guestModules: ['virtio_pci', 'virtio_net', 'virtio_input'],
  },
};

export const archSpec = (arch: Arch): ArchSpec => ARCHES[arch];

/** This machine's architecture in the config's words (undefined for one sovereign has no spec for). */
export function hostArch(): Arch | undefined {
  return ({ x64: 'x86_64', arm64: 'aarch64' } as const)[process.arch as 'x64' | 'arm64'];
}

/** A kernel package name for the device: `{arch}` becomes Debian's architecture name (`linux-image-cloud-{arch}` -> `linux-image-cloud-arm64`). */
export const debPackageFor = (template: string, arch: Arch): string => template.replaceAll('{arch}', ARCHES[arch].deb);
