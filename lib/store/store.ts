// The store interface: records (one per task key) and content-addressed blobs; local and remote implement it.

/** One file a task produced, by content. */
export interface OutputFile {
  /** File name inside the task's output directory, e.g. `rootfs.img`. */
  name: string;
  sha256: string;
  size: number;
  /** Unix mode bits (e.g. 0o755) restored with the file. */
  mode: number;
}

/** What a task produced for a key: enough to compute dependents' keys without the bytes. */
export interface CacheRecord {
  schema: 1;
  key: string;
  /** Task id, for humans (`sql:rootfs`). */
  task: string;
  files: OutputFile[];
  /** Non-file output, e.g. an image id. */
  value?: unknown;
  /** Hash of files + value: what dependents' keys use, and what early cutoff compares. */
  outputHash: string;
  durationMs: number;
  /** Identity of tools whose output depends on them (also in the key). */
  tools: Record<string, string>;
  createdAt: string;
}

export interface TransferProgress {
  (done: number, total: number): void;
}

/**
 * A cache of records and blobs. `get*` misses return undefined; `put*` may decline (return false)
 * without failing the build. Implementations verify what they hand out.
 */
export interface Store {
  readonly name: string;
  getRecord(key: string): Promise<CacheRecord | undefined>;
  putRecord(record: CacheRecord): Promise<boolean>;
  hasBlob(sha256: string): Promise<boolean>;
  /** Copies the blob to `dest` (temp + rename), verifying its sha256; false when absent or corrupt. */
  fetchBlob(sha256: string, size: number, dest: string, progress?: TransferProgress): Promise<boolean>;
  /** Stores `path` as blob `sha256` (the caller hashed it). */
  putBlob(sha256: string, path: string, progress?: TransferProgress): Promise<boolean>;
  /** Forgets a record whose blobs turned out corrupt. */
  evict?(key: string): Promise<void>;
  /** Persists what speeds up the next run (the local record index); called once at the end of a run. */
  flush?(): Promise<void>;
}
