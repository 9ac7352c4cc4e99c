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
  /** The console of the VM's previous run (the supervisor keeps one, for why it died). */
  prevLog: 'console.prev.log',
  /** The supervisor (supervise.sh, the VM process's parent): its pid, its log of starts and exits, its state for `status`. */
  supervisorPid: 'supervisor.pid',
  supervisorLog: 'supervisor.log',
  supervisorState: 'supervisor.state',
  /** crosvm: how to undo this VM's own network (its TAP and tagged port rules), written by start.sh; run by the supervisor when it gives up. */
  teardown: 'teardown.sh',
} as const;

/** Files in the device root `<root>/`, shared by every VM of the device. */
export const DEVICE_FILES = {
  /** The supervisor every VM runs under. */
  supervisor: 'supervise.sh',
  /** Starts the deployed VMs in dependsOn order; run by the boot hook `autostart --enable` installs. */
  boot: 'boot.sh',
  /** Stops the VMs in reverse dependsOn order, as `sovereign stop` does; run by the systemd unit when a Linux box shuts down. */
  halt: 'halt.sh',
} as const;

export type DeviceFile = keyof typeof DEVICE_FILES;

export type VmFile = keyof typeof VM_FILES;
