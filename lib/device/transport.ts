// The transport interface: how commands and bytes reach a device. adb.ts, ssh.ts and local.ts implement it.
import type { ExecResult } from '../exec.ts';

export interface TransportRunOptions {
  /** Sent on stdin: the only way secrets travel (never in argv). */
  input?: string | Buffer;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Resolve with a non-zero exit instead of throwing. */
  nothrow?: boolean;
}

export interface UploadOptions {
  signal?: AbortSignal;
  /** bytes sent so far, total */
  progress?: (done: number, total: number) => void;
  /** The file is sparse (a data disk): transfer only its data, recreate the holes. */
  sparse?: boolean;
}

export interface Transport {
  readonly kind: 'adb' | 'ssh' | 'local';
  /** Human label, e.g. `ssh root@10.9.0.2:22`, `adb -s R5CT…`, `local .sovereign/devices/local`. */
  readonly label: string;
  /** Runs a POSIX shell script on the device as the device's admin (root / su). */
  run(script: string, opts?: TransportRunOptions): Promise<ExecResult>;
  /** Copies a local file to exactly `remote` (callers pick a temp name and rename: see DeviceSession.push). */
  upload(local: string, remote: string, opts?: UploadOptions): Promise<void>;
  /** Ends shared connections (ssh master, …). */
  close(): Promise<void>;
}
