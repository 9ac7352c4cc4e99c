// Picks the transport for a device entry: the one place that knows which implementation serves which kind.
import type { Device } from '../config.ts';
import { adbTransport } from './adb.ts';
import { localTransport } from './local.ts';
import { sshTransport } from './ssh.ts';
import type { Transport } from './transport.ts';

/** `root`: the repo root (local devices live under it; relative identity paths resolve against it). */
export async function openTransport(device: Device, root: string): Promise<Transport> {
  switch (device.transport) {
    case 'local': return localTransport(root, `local ${device.root}`);
    case 'ssh': return sshTransport(device, root);
    case 'adb': return adbTransport(device);
  }
}
