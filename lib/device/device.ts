// DeviceSession: device operations built once on top of any Transport (atomic push, manifest, detached start).
// Implemented once in session.ts.
import type { Device } from '../config.ts';
import type { ExecResult } from '../exec.ts';
import type { Transport, TransportRunOptions, UploadOptions } from './transport.ts';

/** What was pushed to `<root>/vm/<svc>/`: file name -> content identity. Lives at `<root>/vm/<svc>/manifest.json`. */
export interface Manifest {
  files: Record<string, ManifestEntry>;
}

/**
 * `replacing`: a push of another version began (set before its rename); the file may hold either, so the entry
 * vouches for nothing until the push records the new one — it stays only as the basis of the next delta push.
 */
export interface ManifestEntry {
  sha256: string;
  size: number;
  replacing?: true;
  /** `sparse-v1`: `sha256` is the file's sparseIdentity (lib/extents.ts), not the sha256 of its bytes (data.img). */
  identity?: 'sparse-v1';
}

export interface DeviceSession {
  readonly device: Device;
  readonly transport: Transport;
  /** Absolute device path of `<root>/vm/<svc>`. */
  serviceDir(svc: string): string;
  run(script: string, opts?: TransportRunOptions): Promise<ExecResult>;
  /** Atomic: upload to a temp name in the same directory, then rename. Returns bytes sent. */
  push(local: string, remote: string, opts?: UploadOptions): Promise<{ bytes: number }>;
  /** Atomic write of small content (sent on stdin) with the given mode. */
  writeFile(remote: string, data: string | Buffer, mode: number): Promise<void>;
  readFile(remote: string): Promise<Buffer | undefined>;
  /** Bytes of `remote` from `offset` to its current end (incremental log reading). */
  readFrom(remote: string, offset: number): Promise<Buffer>;
  sha256(remote: string): Promise<string | undefined>;
  exists(remote: string): Promise<boolean>;
  /** Permission bits of `remote` (e.g. 0o755), undefined when absent. */
  mode(remote: string): Promise<number | undefined>;
  manifest(svc: string): Promise<Manifest>;
  recordPush(svc: string, name: string, entry: ManifestEntry): Promise<void>;
  /** The service's manifest was deleted on the device (remove): later asks in this session see nothing pushed. */
  forgetPushes(svc: string): void;
  /** Starts `script` detached from the transport (adb/ssh return at once), stdout+stderr appended to `log`, pid to `pidFile`. */
  spawnDetached(script: string, opts: { cwd: string; log: string; pidFile: string }): Promise<number>;
  isAlive(pid: number): Promise<boolean>;
  close(): Promise<void>;
}
