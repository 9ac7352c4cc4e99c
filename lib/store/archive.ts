// Portable cache archives: `cache export` writes records + blobs as a .tar.gz, `cache import` verifies each entry before taking it.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tar from 'tar';
import { tmpName } from '../fsutil.ts';
import { hashFile } from '../hash.ts';
import { isRecordKey, parseRecord } from './record.ts';
import type { CacheRecord } from './store.ts';

export interface ExportResult {
  records: number;
  blobs: number;
  /** Size of the archive written. */
  bytes: number;
  /** Records left out: unknown key, unreadable, or a blob missing locally (a record fetched "without the bytes"). */
  skippedRecords: number;
}

export interface ImportResult {
  /** Records and blobs added to the cache. */
  records: number;
  blobs: number;
  /** Entries already in the cache (kept as they were). */
  present: number;
  /** Entries refused: a blob whose content does not match its sha256, a malformed record, a record whose blobs are missing. */
  skippedRecords: number;
  skippedBlobs: number;
  /** The archive itself was damaged (truncated, not gzip); whatever was readable and verified was still imported. */
  error?: string;
}

const RECORD_PATH = /^records\/([^/]+)\.json$/;
const BLOB_PATH = /^blobs\/([0-9a-f]{2})\/([0-9a-f]{64})$/;
const MAX_RECORD_BYTES = 16 * 1024 * 1024;

/** Writes the records (all, or those of `keys`) and their blobs from cache dir `dir` into `file` (tar + gzip, temp + rename). */
export async function exportCache(dir: string, file: string, keys?: string[]): Promise<ExportResult> {
  const wanted = keys ?? (await fs.readdir(join(dir, 'records')).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5));
  const paths = new Set<string>();
  let records = 0;
  let skippedRecords = 0;
  for (const key of [...new Set(wanted)].sort()) {
    const record = isRecordKey(key) ? await readRecord(join(dir, 'records', `${key}.json`), key) : undefined;
    const blobs = record?.files.map((f) => `blobs/${f.sha256.slice(0, 2)}/${f.sha256}`) ?? [];
    const complete = record && (await Promise.all(blobs.map((b) => fs.access(join(dir, b)).then(() => true, () => false)))).every(Boolean);
    if (!complete) { skippedRecords++; continue; }
    records++;
    paths.add(`records/${key}.json`);
    for (const b of blobs) paths.add(b);
  }
  await fs.mkdir(dirname(file), { recursive: true });
  const tmp = tmpName(file);
  try {
    // portable + fixed mtime: the same cache content gives the same archive bytes.
    await tar.c({ gzip: true, file: tmp, cwd: dir, portable: true, mtime: new Date(0) }, [...paths].sort());
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  const blobs = [...paths].filter((p) => p.startsWith('blobs/')).length;
  return { records, blobs, bytes: (await fs.stat(file)).size, skippedRecords };
}

/** Adds the verified records and blobs of archive `file` to cache dir `dir`; bad entries are skipped and counted. */
export async function importCache(dir: string, file: string): Promise<ImportResult> {
  await fs.access(file); // a missing archive is the caller's error, not an empty import
  await fs.mkdir(join(dir, 'tmp'), { recursive: true });
  const staging = await fs.mkdtemp(join(dir, 'tmp', 'import-')); // same file system: entries move in by rename
  const result: ImportResult = { records: 0, blobs: 0, present: 0, skippedRecords: 0, skippedBlobs: 0 };
  try {
    try {
      await tar.x({
        file, cwd: staging,
        // Only plain files at the two known places: no links, devices or paths elsewhere.
        filter: (path, entry) => 'type' in entry && entry.type === 'File' && (RECORD_PATH.test(clean(path)) || BLOB_PATH.test(clean(path))),
      });
    } catch (e) {
      result.error = (e as Error).message;
    }
    for (const sub of await listDir(join(staging, 'blobs'))) {
      for (const sha of await listDir(join(staging, 'blobs', sub))) {
        const src = join(staging, 'blobs', sub, sha);
        if (!BLOB_PATH.test(`blobs/${sub}/${sha}`) || (await hashFile(src).catch(() => '')) !== sha) { result.skippedBlobs++; continue; }
        const moved = await moveIn(src, join(dir, 'blobs', sub, sha));
        if (moved) result.blobs++; else result.present++;
      }
    }
    for (const name of await listDir(join(staging, 'records'))) {
      const key = RECORD_PATH.exec(`records/${name}`)?.[1];
      const record = key ? await readRecord(join(staging, 'records', name), key) : undefined;
      const haveBlobs = record && (await Promise.all(record.files.map((f) => fs.access(join(dir, 'blobs', f.sha256.slice(0, 2), f.sha256)).then(() => true, () => false)))).every(Boolean);
      if (!record || !haveBlobs) { result.skippedRecords++; continue; }
      const moved = await moveIn(join(staging, 'records', name), join(dir, 'records', name));
      if (moved) result.records++; else result.present++;
    }
  } finally {
    // A damaged archive can make tar give up while its last file is still being closed: retry the removal.
    await fs.rm(staging, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  }
  return result;
}

/** A stable digest of a set of task keys, e.g. for a CI cache key (`sovereign hash`). */
export function keysDigest(keys: Iterable<string>): string {
  return createHash('sha256').update([...new Set(keys)].sort().join('\n')).digest('hex');
}

async function readRecord(path: string, key: string): Promise<CacheRecord | undefined> {
  try {
    if ((await fs.stat(path)).size > MAX_RECORD_BYTES) return undefined;
    return parseRecord(JSON.parse(await fs.readFile(path, 'utf8')), key);
  } catch {
    return undefined;
  }
}

/** Renames `src` to `dest` unless `dest` exists (what the cache has is kept); false when it was present. */
async function moveIn(src: string, dest: string): Promise<boolean> {
  if (await fs.access(dest).then(() => true, () => false)) return false;
  await fs.mkdir(dirname(dest), { recursive: true });
  await fs.rename(src, dest);
  return true;
}

const clean = (p: string) => p.replace(/^\.\//, '');
const listDir = (p: string) => fs.readdir(p).catch(() => [] as string[]);
