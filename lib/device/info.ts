// What status and test say about the device itself: reachable, its kernel (`uname -r`), and whether root is there (`su -v` on a phone).
import type { DeviceSession } from './device.ts';

export interface DeviceInfo {
  /** `uname -r` on the device. */
  kernel: string;
  /** The device's su (`su -v`, e.g. `27.0:MAGISK`), when it has one. */
  su?: string;
  /** The uid device commands run as (0: root). */
  uid?: number;
}

/** One round trip; a device that does not answer makes the transport throw its own "not reachable" error. */
export async function deviceInfo(session: DeviceSession, signal?: AbortSignal): Promise<DeviceInfo> {
  const { stdout } = await session.run(`echo "kernel=$(uname -r)"
echo "uid=$(id -u)"
if command -v su >/dev/null 2>&1; then echo "su=$(su -v 2>/dev/null | head -n 1)"; fi`, { signal, nothrow: true });
  const kv = Object.fromEntries(stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]));
  const uid = /^\d+$/.test(kv.uid ?? '') ? Number(kv.uid) : undefined;
  return { kernel: kv.kernel || 'unknown', su: kv.su || undefined, uid };
}

/** `device phone (adb -s R5CT…): connected, kernel 6.1.57, root via su 27.0:MAGISK`. */
export function describeDevice(session: DeviceSession, info: DeviceInfo): string {
  const root = info.uid === 0
    ? session.transport.kind === 'adb' ? `root via su ${info.su ?? '(version unknown)'}` : 'root'
    : `not root (uid ${info.uid ?? '?'})${session.transport.kind === 'adb' ? ': install Magisk or KernelSU' : ''}`;
  return `device ${session.device.name} (${session.transport.label}): connected, kernel ${info.kernel}, ${root}`;
}

const told = new WeakSet<DeviceSession>();

/** The device line, once per session (status and test run once per service, and share the session). */
export async function deviceLineOnce(session: DeviceSession, signal?: AbortSignal): Promise<string | undefined> {
  if (told.has(session)) return undefined;
  told.add(session);
  return describeDevice(session, await deviceInfo(session, signal));
}
