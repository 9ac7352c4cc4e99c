// The files of a service's folder on the device, by role: one name each, shared by the steps that make, push and use them.

/** Files in `<root>/vm/<service>/`, by role. start.sh runs there. */
export const VM_FILES = {
  rootfs: 'rootfs.img',
  data: 'data.img',
  kernel: 'kernel',
  secrets: 'secrets.env',
  script: 'start.sh',
  log: 'console.log',
  pid: 'vm.pid',
  socket: 'vm.sock',
  /** qemu's monitor, as FIFOs `vm.monitor.in` / `.out`. */
  monitor: 'vm.monitor',
  /** The deploy output hash the running VM was started with. */
  deployed: 'deployed',
} as const;

export type VmFile = keyof typeof VM_FILES;
