// The VM process on its device: the files of a service's device dir, its pid (checked to really be this VM), and stopping it.
import { posix } from 'node:path';
import type { DeviceSession } from '../device/device.ts';
import { shQuote } from '../device/shell.ts';
import { Cancelled, UserError } from '../error.ts';
import { crosvmTeardown } from './network.ts';
import { vmControl } from './start-script.ts';
import { DEVICE_FILES, VM_FILES, type DeviceFile, type VmFile } from './files.ts';

export { DEVICE_FILES, VM_FILES, type DeviceFile, type VmFile };


/** Absolute device path of one of a service's files. */
export const vmPath = (session: DeviceSession, service: string, file: VmFile) => `${session.serviceDir(service)}/${VM_FILES[file]}`;

/** Absolute device path of one of the device root's shared files (`<root>/`, the parent of `vm/`). */
export const devicePath = (session: DeviceSession, file: DeviceFile) => posix.join(session.serviceDir('_'), '..', '..', DEVICE_FILES[file]);

/**
 * Shell function `vm_alive PID`: true while PID runs *in this directory*. A pid file can outlive its VM and
 * the pid be reused by anything; the process's cwd (start.sh runs in the service dir and execs the
 * hypervisor) tells this VM apart from another service's and from an unrelated process. Zombies have no cwd.
 */
export const ALIVE_FN = `vm_alive() { [ "$(readlink /proc/$1/cwd 2>/dev/null)" = "$(pwd -P)" ]; }
vm_pid() { p=$(cat ${VM_FILES.pid} 2>/dev/null) || return 1; case $p in ''|*[!0-9]*) return 1 ;; esac; vm_alive "$p" && echo "$p"; }`;

/** Runs `body` in the service's device dir with the helpers above; a missing dir runs only `missing` and prints nothing else. */
async function inDir(session: DeviceSession, service: string, body: string, opts: { signal?: AbortSignal; timeoutMs?: number; missing?: string } = {}) {
  const dir = session.serviceDir(service);
  const missing = opts.missing ? `{\n${opts.missing}\nexit 0\n}` : 'exit 0';
  return session.run(`cd ${shQuote(dir)} 2>/dev/null || ${missing}\n${ALIVE_FN}\n${body}`, { signal: opts.signal, timeoutMs: opts.timeoutMs, nothrow: true });
}

/** The pid of the service's running VM, or undefined when it is not running (or its pid file is stale). */
export async function runningPid(session: DeviceSession, service: string, signal?: AbortSignal): Promise<number | undefined> {
  const { stdout } = await inDir(session, service, 'vm_pid || true', { signal });
  const pid = Number(stdout.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export interface StopOptions {
  /** Seconds the guest gets to shut down cleanly when asked through the monitor (default 30). */
  shutdownSeconds?: number;
  /** Seconds between TERM and KILL (default 10). */
  graceSeconds?: number;
  signal?: AbortSignal;
}

/** shutdown: the guest shut down when asked; ended: the hypervisor ended it when told to (crosvm stop); stopped: it ended on TERM; killed: it needed KILL. */
export type StopOutcome = { state: 'not running' } | { state: 'shutdown' | 'ended' | 'stopped' | 'killed'; pid: number };

/**
 * Stops the VM's supervisor first (so nothing restarts the VM), then asks the guest to shut down (its init stops the service and syncs; qemu exits), then TERM, then
 * KILL after the grace period, all in one device round trip (adb/ssh latency stays out of the loop). Idempotent: a VM that is not running is "not running". Removes vm.pid and vm.sock, keeps console.log.
 * On crosvm devices it deletes this VM's TAP and its tagged DNAT/accept rules and nothing else: the bridge and NAT serve every VM.
 */
export async function stopVm(session: DeviceSession, service: string, opts: StopOptions = {}): Promise<StopOutcome> {
  if (opts.signal?.aborted) throw new Cancelled();
  const { script, netCleanup } = stopScript(session.device.hypervisor, service, opts);
  // The network goes even when the folder is gone (a VM removed by hand, or by a version that left its rules).
  const { stdout, stderr } = await inDir(session, service, script, { signal: opts.signal, timeoutMs: stopSeconds(opts) * 1000, missing: netCleanup });
  const [state, pidText] = stdout.trim().split(/\s+/);
  const pid = Number(pidText);
  if (state === 'alive') throw new UserError(`${service}: VM process ${pid} survived SIGKILL`, { hint: 'it may be stuck in the kernel (D state); check the device' });
  if (state === 'shutdown' || state === 'ended' || state === 'stopped' || state === 'killed') return { state, pid };
  if (state === 'none' || state === undefined || state === '') return { state: 'not running' };
  throw new UserError(`${service}: could not stop the VM`, { details: stderr.trim().split('\n').slice(-10) });
}

/** The longest a stop can take, in seconds: the clean shutdown, the grace after TERM, and slack for the rest. */
export const stopSeconds = (opts: StopOptions = {}) => (opts.shutdownSeconds ?? 30) + (opts.graceSeconds ?? 10) + 30;

/**
 * The device-side stop, as shell run in the VM's folder with ALIVE_FN defined (stopVm runs it; so does halt.sh at a
 * Linux box's shutdown): it prints `<state> <pid>` (state: none, shutdown, ended, stopped, killed, or alive when KILL
 * failed). `netCleanup` is the crosvm network teardown it ends with ('' on qemu), also to run when the folder is gone.
 */
export function stopScript(hypervisor: DeviceSession['device']['hypervisor'], service: string, opts: StopOptions = {}): { script: string; netCleanup: string } {
  const ticks = Math.max(1, Math.round((opts.graceSeconds ?? 10) * 5));
  const shutdownTicks = Math.max(0, Math.round((opts.shutdownSeconds ?? 30) * 5));
  const control = vmControl(hypervisor);
  const netCleanup = hypervisor === 'crosvm' ? crosvmTeardown(service) : '';
  // The supervisor goes first, so it does not restart the VM this stops (it leaves the VM running on TERM).
  const script = `sup=$(cat ${VM_FILES.supervisorPid} 2>/dev/null) || sup=
case $sup in ''|*[!0-9]*) sup= ;; esac
if [ -n "$sup" ] && vm_alive "$sup"; then
  kill -TERM "$sup" 2>/dev/null || true
  i=0
  while vm_alive "$sup" && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  vm_alive "$sup" && kill -KILL "$sup" 2>/dev/null
fi
rm -f ${VM_FILES.supervisorPid}
pid=$(vm_pid) || pid=
state=none
if [ -n "$pid" ]; then
  state=stopped
  # A clean shutdown first, through the hypervisor's control channel.
  if [ ${shutdownTicks} -gt 0 ] && { ${control.shutdown}; }; then
    i=0
    while vm_alive "$pid" && [ $i -lt ${shutdownTicks} ]; do sleep 0.2; i=$((i+1)); done
    vm_alive "$pid" || state=shutdown
  fi
${control.exit ? `  if vm_alive "$pid" && { ${control.exit}; }; then
    i=0
    while vm_alive "$pid" && [ $i -lt 25 ]; do sleep 0.2; i=$((i+1)); done
    vm_alive "$pid" || state=ended
  fi
` : ''}  if vm_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while vm_alive "$pid" && [ $i -lt ${ticks} ]; do sleep 0.2; i=$((i+1)); done
  fi
  if vm_alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    state=killed
    i=0
    while vm_alive "$pid" && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
    if vm_alive "$pid"; then echo "alive $pid"; exit 0; fi
  fi
fi
rm -f ${VM_FILES.pid} ${VM_FILES.socket} ${VM_FILES.monitor}.in ${VM_FILES.monitor}.out
${netCleanup}
echo "$state $pid"`;
  return { script, netCleanup };
}

/** The last `lines` lines of the service's console log ('' when there is none). */
export async function consoleTail(session: DeviceSession, service: string, lines: number, signal?: AbortSignal): Promise<string> {
  const { stdout } = await inDir(session, service, `[ -f ${VM_FILES.log} ] && tail -n ${Math.max(1, Math.floor(lines))} ${VM_FILES.log} || true`, { signal });
  return stdout;
}

/** Whether the ready marker is in the running VM's console.log (the supervisor moves an earlier run's console aside). */
export async function readyInLog(session: DeviceSession, service: string, marker: string, signal?: AbortSignal): Promise<boolean> {
  return (await session.run(`grep -qF -- ${shQuote(marker)} ${shQuote(vmPath(session, service, 'log'))}`, { nothrow: true, signal })).code === 0;
}
