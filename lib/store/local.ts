// The local store: `records/<key>.json` and content-addressed `blobs/<aa>/<sha256>`, every write temp + rename.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Config } from '../config.ts';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { renameDurable, tmpName, writeFileAtomic } from '../fsutil.ts';
import { hashFile } from '../hash.ts';
import { parseRecord } from './record.ts';
import { UserError } from '../error.ts';
import { RecordIndex, recordIndexFile } from './record-index.ts';
import type { CacheRecord, Store, TransferProgress } from './store.ts';

/** The local store of a repo: `cache.dir` relative to the repo root, or absolute. */
export function localStore(config: Pick<Config, 'cache'>, root: string): LocalStore {
  return new LocalStore(resolve(root, config.cache.dir));
}

export class LocalStore implements Store {
  readonly name = 'local';
  constructor(readonly dir: string) {}

  recordPath = (key: string) => join(this.dir, 'records', `${key}.json`);
  blobPath = (sha: string) => join(this.dir, 'blobs', sha.slice(0, 2), sha);

  private recordIndex?: RecordIndex;
  /** Loaded on first lookup, so commands that never read a record never read the index. */
  private get index(): RecordIndex {
    return (this.recordIndex ??= new RecordIndex(recordIndexFile(this.dir), join(this.dir, 'records')));
  }

  async getRecord(key: string): Promise<CacheRecord | undefined> {
    const indexed = this.index.get(key);
    if (indexed) return indexed;
    const rec = await this.readRecord(key);
    if (rec) this.index.note(rec);
    return rec;
  }

  private async readRecord(key: string): Promise<CacheRecord | undefined> {
    try {
      return parseRecord(JSON.parse(await fs.readFile(this.recordPath(key), 'utf8')), key);
    } catch {
      return undefined;
    }
  }

  async putRecord(record: CacheRecord): Promise<boolean> {
    await writeFileAtomic(this.recordPath(record.key), JSON.stringify(record, null, 1));
    this.index.note(record);
    return true;
  }

  /** Saves the record index for the next run (at the end of a run, when no record is being written). */
  async flush(): Promise<void> {
    await this.recordIndex?.save();
  }

  async hasBlob(sha: string): Promise<boolean> {
    return fs.access(this.blobPath(sha)).then(() => true, () => false);
  }

  async fetchBlob(sha: string, size: number, dest: string, progress?: TransferProgress): Promise<boolean> {
    const src = this.blobPath(sha);
    await fs.mkdir(dirname(dest), { recursive: true });
    const tmp = tmpName(dest);
    try {
      const got = await copyHashing(src, tmp, size, progress);
      if (got !== sha) {
        await fs.rm(src, { force: true }); // corrupt: evict so the task re-runs and stores a good copy
        await fs.rm(tmp, { force: true });
        return false;
      }
      await renameDurable(tmp, dest);
      return true;
    } catch {
      await fs.rm(tmp, { force: true });
      return false;
    }
  }

  async putBlob(sha: string, path: string, progress?: TransferProgress): Promise<boolean> {
    const dest = this.blobPath(sha);
    if (await this.hasBlob(sha)) return true;
    await fs.mkdir(dirname(dest), { recursive: true });
    const tmp = tmpName(dest);
    try {
      await fs.copyFile(path, tmp, fs.constants.COPYFILE_FICLONE);
      progress?.(1, 1);
      await renameDurable(tmp, dest);
      return true;
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
  }

  async evict(key: string): Promise<void> {
    await fs.rm(this.recordPath(key), { force: true });
    this.recordIndex?.forget(key);
  }

  /**
   * Every readable record, read a few at a time (thousands at once run out of file descriptors). `strict`: a record
   * that cannot be read (as opposed to one that is malformed) throws, so gc never takes its blobs for garbage.
   */
  async listRecords(strict = false): Promise<CacheRecord[]> {
    const names = (await fs.readdir(join(this.dir, 'records')).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
    const out: CacheRecord[] = [];
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const key = names[next++].slice(0, -5);
        const text = await fs.readFile(this.recordPath(key), 'utf8').catch((e: NodeJS.ErrnoException) => {
          if (!strict || e.code === 'ENOENT') return undefined; // removed meanwhile: nothing to keep
          throw new UserError(`could not read cache record ${this.recordPath(key)}: ${e.code ?? e.message}`, {
            code: 'environment', hint: 'nothing was deleted; fix the cause (file descriptor limit, permissions) and run it again',
          });
        });
        let rec: CacheRecord | undefined;
        try { rec = text === undefined ? undefined : parseRecord(JSON.parse(text), key); } catch { /* malformed: unusable, like a miss */ }
        if (rec) out.push(rec);
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, names.length) }, worker));
    return out;
  }

  /** Re-hashes every blob; evicts corrupt blobs and the records that need them. */
  async verify(progress?: (checked: number, total: number) => void): Promise<{ records: number; blobs: number; bad: string[] }> {
    const records = await this.listRecords();
    const blobs = new Map<string, number>();
    for (const r of records) for (const f of r.files) blobs.set(f.sha256, f.size);
    const bad: string[] = [];
    let n = 0;
    for (const [sha] of blobs) {
      const p = this.blobPath(sha);
      const got = await hashFile(p).catch(() => undefined);
      if (got !== sha) { bad.push(sha); await fs.rm(p, { force: true }); }
      progress?.(++n, blobs.size);
    }
    for (const r of records) if (r.files.some((f) => bad.includes(f.sha256))) await this.evict(r.key);
    return { records: records.length, blobs: blobs.size, bad };
  }

  /** Removes least recently used records and unreferenced blobs until the store is under `maxBytes`. */
  async gc(maxBytes: number): Promise<{ removedRecords: number; freedBytes: number; sizeBytes: number }> {
    const records = await this.listRecords(true);
    // Last use: atime where the file system keeps it (relatime), when it was written, or when the record index last
    // answered for it (then the file is not read).
    const used = await Promise.all(records.map(async (r) => {
      const st = await fs.stat(this.recordPath(r.key));
      return { r, t: Math.max(st.atimeMs, st.mtimeMs, this.index.lastUsed(r.key) ?? 0) };
    }));
    used.sort((a, b) => b.t - a.t); // newest first
    const keep = new Set<string>();
    let size = 0;
    let removedRecords = 0;
    for (const { r } of used) {
      const extra = r.files.filter((f) => !keep.has(f.sha256)).reduce((s, f) => s + f.size, 0);
      if (size + extra <= maxBytes) { size += extra; r.files.forEach((f) => keep.add(f.sha256)); }
      else { await this.evict(r.key); removedRecords++; }
    }
    let freedBytes = 0;
    for (const sub of await fs.readdir(join(this.dir, 'blobs')).catch(() => [] as string[])) {
      for (const sha of await fs.readdir(join(this.dir, 'blobs', sub))) {
        if (keep.has(sha)) continue;
        const p = join(this.dir, 'blobs', sub, sha);
        freedBytes += (await fs.stat(p)).size;
        await fs.rm(p, { force: true });
      }
    }
    return { removedRecords, freedBytes, sizeBytes: size };
  }
}

async function copyHashing(src: string, dest: string, size: number, progress?: TransferProgress): Promise<string> {
  const h = createHash('sha256');
  let done = 0;
  const tap = new Transform({
    transform(chunk, _e, cb) { h.update(chunk); done += chunk.length; progress?.(done, size); cb(null, chunk); },
  });
  await pipeline(createReadStream(src, { highWaterMark: 1 << 20 }), tap, createWriteStream(dest));
  return h.digest('hex');
}
