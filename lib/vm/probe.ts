// Checks run on the device against a VM's service ports: "answers on TCP", "PostgreSQL answers a startup message",
// and "PostgreSQL runs a query as a real login".
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

/** postgresQueryScript's exit code when the device has no psql. */
export const NO_PSQL = 3;

/**
 * Logs in as `user` with a password and runs `SELECT 1` with the device's psql; prints psql's output.
 * The password is the first line of the script's stdin, read into PGPASSWORD inside the script: it is never
 * in any argument list (the transports keep argv fixed and send scripts and input on stdin or as `sh -c`
 * text that holds no secret). Exits NO_PSQL when psql is missing.
 */
export function postgresQueryScript(host: string, port: number, user = 'postgres', database = 'postgres'): string {
  return `command -v psql >/dev/null 2>&1 || exit ${NO_PSQL}
IFS= read -r PGPASSWORD || [ -n "$PGPASSWORD" ] || { echo "no password on stdin" >&2; exit 2; }
export PGPASSWORD PGCONNECT_TIMEOUT=5
out=$(psql -X -w -A -t -v ON_ERROR_STOP=1 -h ${shQuote(host)} -p ${port} -U ${shQuote(user)} -d ${shQuote(database)} -c 'SELECT 1' </dev/null 2>&1)
rc=$?
unset PGPASSWORD
printf '%s\n' "$out"
[ $rc -eq 0 ] && [ "$out" = 1 ]`;
}

export type QueryResult = { ok: true } | { ok: false; reason: string } | { ok: 'no-psql' };

/** Runs postgresQueryScript on the device with `password` on stdin (as postgres, or `login`'s user and database). */
export async function queryPostgres(session: DeviceSession, at: { host: string; port: number }, password: string, signal?: AbortSignal, login?: { user: string; database: string }): Promise<QueryResult> {
  const r = await session.run(postgresQueryScript(at.host, at.port, login?.user, login?.database), { input: `${password}\n`, nothrow: true, signal, timeoutMs: 20_000 });
  if (r.code === NO_PSQL) return { ok: 'no-psql' };
  if (r.code === 0) return { ok: true };
  const reason = `${r.stdout}\n${r.stderr}`.trim().split('\n').filter(Boolean).slice(-3).join(' / ') || `exit ${r.code}`;
  return { ok: false, reason };
}
