// One file caching the local store's records (`records.idx`), so a no-op run reads one file instead of one per key.
// The record files stay the source of truth: the index answers only while the records folder is exactly as it
// was when the index was written (same mtime, ctime and inode: any record written, replaced or removed since,
// by this or any other process or by hand, changes them), and its whole content is checksummed.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsutil.ts';
import { folderId, settled, sha256 } from '../hash.ts';
import type { CacheRecord } from './store.ts';

const FORMAT = 'sovereign-record-index 1';
/** Last-use times are kept to this precision: a no-op run within it rewrites nothing. */
const USE_PRECISION_MS = 3600_000;

interface IndexFile {
  format: string;
  /** The records folder's identity when written, or null when it was too fresh to vouch for. */
  folder: string | null;
  records: Record<string, CacheRecord>;
  /** Last time each key was looked up (ms), for least-recently-used gc. */
  used: Record<string, number>;
}

export class RecordIndex {
  private records = new Map<string, CacheRecord>();
  private used = new Map<string, number>();
  /** True when the index on disk vouches for the folder as it is now. */
  private valid = false;
  private dirty = false;

  constructor(private readonly file: string, private readonly recordsDir: string) {
    let data: IndexFile | undefined;
    try {
      const text = readFileSync(file, 'utf8');
      const nl = text.indexOf('\n');
      if (nl === 64 && sha256(text.slice(nl + 1)) === text.slice(0, nl)) data = JSON.parse(text.slice(nl + 1)) as IndexFile;
    } catch { /* none yet, or unreadable: every lookup reads its record file */ }
    if (data?.format !== FORMAT) return;
    this.used = new Map(Object.entries(data.used ?? {}));
    const st = statSync(recordsDir, { bigint: true, throwIfNoEntry: false });
    if (!st || data.folder === null || data.folder !== folderId(st)) return;
    this.records = new Map(Object.entries(data.records));
    this.valid = true;
  }

  /** The record for `key` when the index still vouches for it; undefined means "read the record file". */
  get(key: string): CacheRecord | undefined {
    const r = this.valid ? this.records.get(key) : undefined;
    if (r) this.touch(key);
    return r;
  }

  /** A record just read from (or written to) its file: remembered for the next run. */
  note(record: CacheRecord): void {
    this.records.set(record.key, record);
    this.dirty = true;
    this.touch(record.key);
  }

  forget(key: string): void {
    this.records.delete(key);
    this.dirty = true;
  }

  lastUsed(key: string): number | undefined {
    return this.used.get(key);
  }

  private touch(key: string): void {
    const now = Date.now();
    if (now - (this.used.get(key) ?? 0) < USE_PRECISION_MS) return;
    this.used.set(key, now);
    this.dirty = true;
  }

  /** Writes the index for the folder as it is now: only records whose file is there (call when none is being written). */
  async save(): Promise<void> {
    if (!this.dirty) return;
    const now = Date.now();
    // Identity first, listing second: a change in between makes the identity stale, so the index is never trusted.
    const st = statSync(this.recordsDir, { bigint: true, throwIfNoEntry: false });
    if (!st) return;
    const id = folderId(st);
    const present = new Set(readdirSync(this.recordsDir));
    const records: Record<string, CacheRecord> = {};
    for (const [key, r] of this.records) if (present.has(`${key}.json`)) records[key] = r;
    const data: IndexFile = { format: FORMAT, folder: settled(now, st) ? id : null, records, used: Object.fromEntries(this.used) };
    const body = JSON.stringify(data);
    await writeFileAtomic(this.file, `${sha256(body)}\n${body}`);
    this.dirty = false;
  }
}

export const recordIndexFile = (storeDir: string) => join(storeDir, 'records.idx');
