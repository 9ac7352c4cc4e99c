// Checks run on the device against a VM's service ports: "answers on TCP" and "PostgreSQL answers a startup message".
import type { DeviceSession } from '../device/device.ts';
import { shQuote } from '../device/shell.ts';
import type { StartScriptParams } from './start-script.ts';
import { hostPort } from './start-script.ts';

/** Where a service port is reached from the device: qemu forwards it to loopback, crosvm guests sit on the bridge. */
export function portAddress(p: Pick<StartScriptParams, 'name' | 'index' | 'ports' | 'guestIp' | 'hypervisor'>, port: number, env: NodeJS.ProcessEnv = process.env): { host: string; port: number } {
  return p.hypervisor === 'qemu' ? { host: '127.0.0.1', port: hostPort(p, port, env) } : { host: p.guestIp, port };
}

/** Whichever netcat the device has: nc (Debian, toybox on Android) or busybox's. */
const NC = `vm_nc() { if command -v nc >/dev/null 2>&1; then nc "$@"; elif command -v busybox >/dev/null 2>&1; then busybox nc "$@"; else toybox nc "$@"; fi; }`;

/**
 * Exit 0 when something in the guest accepted the connection. A bare connect proves nothing behind qemu's
 * user-mode forwarding (qemu accepts on the host side, then closes when the guest refuses), so "open" means
 * the connection stayed up for a second (timeout ends it: 124) or the server sent something.
 */
export function tcpProbeScript(host: string, port: number): string {
  return `${NC}
out=$(sleep 2 | timeout 1 sh -c ${shQuote(`${NC}\nvm_nc -w 3 "$0" "$1" 2>/dev/null | head -c 64`)} ${shQuote(host)} ${port}; echo "rc=$?")
case $out in rc=124|rc=143|?*rc=*) exit 0 ;; *) exit 1 ;; esac`;
}

/**
 * PostgreSQL answers: `pg_isready` when the device has it, else a protocol-3 startup message for user and
 * database `postgres` through netcat, passing when the first byte back is 'R' (an authentication request).
 * No password is sent or needed: nothing secret is on any command line.
 */
export function postgresProbeScript(host: string, port: number, opts: { preferPgIsready?: boolean } = {}): string {
  // length 41 (\\051), protocol 3.0, "user\\0postgres\\0database\\0postgres\\0\\0"
  const startup = String.raw`\000\000\000\051\000\003\000\000user\000postgres\000database\000postgres\000\000`;
  const wire = `${NC}
first=$({ printf '${startup}'; sleep 2; } | timeout 3 sh -c ${shQuote(`${NC}\nvm_nc -w 3 "$0" "$1" 2>/dev/null`)} ${shQuote(host)} ${port} | head -c 1)
[ "$first" = R ]`;
  if (opts.preferPgIsready === false) return wire;
  return `if command -v pg_isready >/dev/null 2>&1; then exec pg_isready -q -h ${shQuote(host)} -p ${port} -t 3; fi\n${wire}`;
}

export async function probe(session: DeviceSession, script: string, signal?: AbortSignal): Promise<boolean> {
  const r = await session.run(script, { nothrow: true, signal, timeoutMs: 15_000 });
  return r.code === 0;
}
