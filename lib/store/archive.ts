// Portable cache archives: `cache export` writes records + blobs as a .tar.gz, `cache import` verifies each entry before taking it.
import { createHash, createHmac } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tar from 'tar';
import { atomically, renameDurable, roomFor } from '../fsutil.ts';
import { UserError } from '../error.ts';
import { hashFile } from '../hash.ts';
import { isRecordKey, parseRecord } from './record.ts';
import type { CacheRecord } from './store.ts';
import { sameTag } from './remote-signing.ts';

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
  /** The archive itself was damaged (truncated, not gzip, too big): importCache then throws, after keeping what verified. */
  error?: string;
}

const RECORD_PATH = /^records\/([^/]+)\.json$/;
const BLOB_PATH = /^blobs\/([0-9a-f]{2})\/([0-9a-f]{64})$/;
const TAG_PATH = /^records\/([^/]+)\.tag$/;
const MAX_RECORD_BYTES = 16 * 1024 * 1024;

export interface ArchiveOptions {
  /** HMAC key (the remote cache's signing key): export tags every record; import takes only records whose tag verifies. */
  signatureKey?: string;
  /** Import: the most bytes the archive may unpack (default: the free space of the cache's file system, less a margin). */
  maxBytes?: number;
}

/** Writes the records (all, or those of `keys`) and their blobs from cache dir `dir` into `file` (tar + gzip, temp + rename). */
export async function exportCache(dir: string, file: string, keys?: string[], opts: ArchiveOptions = {}): Promise<ExportResult> {
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
  // Staged as hard links (same file system, no copies) beside the tags, so the archive is cut from one folder.
  await fs.mkdir(join(dir, 'tmp'), { recursive: true });
  const stage = await fs.mkdtemp(join(dir, 'tmp', 'export-'));
  try {
    for (const p of [...paths]) {
      await fs.mkdir(dirname(join(stage, p)), { recursive: true });
      await fs.link(join(dir, p), join(stage, p));
      const key = RECORD_PATH.exec(p)?.[1];
      if (key && opts.signatureKey) {
        paths.add(`records/${key}.tag`);
        await fs.writeFile(join(stage, 'records', `${key}.tag`), recordMac(opts.signatureKey, key, await fs.readFile(join(dir, p))).toString('base64'));
      }
    }
    // An empty cache still makes an archive (its one entry the empty records folder, which import passes over):
    // tar neither writes nor reads one without entries.
    if (!paths.size) await fs.mkdir(join(stage, 'records'));
    // portable + fixed mtime: the same cache content gives the same archive bytes.
    await atomically(file, (tmp) => tar.c({ gzip: true, file: tmp, cwd: stage, portable: true, mtime: new Date(0) }, paths.size ? [...paths].sort() : ['records']));
  } finally {
    await fs.rm(stage, { recursive: true, force: true });
  }
  const blobs = [...paths].filter((p) => p.startsWith('blobs/')).length;
  return { records, blobs, bytes: (await fs.stat(file)).size, skippedRecords };
}

/** The archive's tag of a record: HMAC-SHA256 over a domain, its key and its bytes (base64). */
function recordMac(secret: string, key: string, body: Buffer): Buffer {
  return createHmac('sha256', secret).update(`sovereign-archive-record-v1\0${key}\0`).update(body).digest();
}

/**
 * Adds the verified records and blobs of archive `file` to cache dir `dir`; bad entries are skipped and counted.
 * Owners are never taken from the archive (files are ours, 0644), and unpacking stops at `maxBytes` (a gzip bomb
 * fills no disk). A file that is not an archive, or one damaged or too big, is a UserError after what verified is kept.
 */
export async function importCache(dir: string, file: string, opts: ArchiveOptions = {}): Promise<ImportResult> {
  const st = await fs.stat(file).catch(() => undefined);
  if (!st) throw new UserError(`cache import: ${file} does not exist`, { code: 'usage', hint: 'name an archive made by `sovereign cache export FILE`' });
  if (!st.isFile()) throw new UserError(`cache import: ${file} is not a file`, { code: 'usage', hint: 'name an archive made by `sovereign cache export FILE`' });
  await fs.mkdir(join(dir, 'tmp'), { recursive: true });
  const staging = await fs.mkdtemp(join(dir, 'tmp', 'import-')); // same file system: entries move in by rename
  const result: ImportResult = { records: 0, blobs: 0, present: 0, skippedRecords: 0, skippedBlobs: 0 };
  let budget = opts.maxBytes ?? (await roomFor(dir));
  let over = false;
  try {
    try {
      await tar.x({
        file, cwd: staging, strict: true,
        preserveOwner: false, // as root, tar would keep the archive's uids: another user could then rewrite the cache
        // Only plain files at the known places, within the size budget: no links, devices, paths elsewhere or bombs.
        filter: (path, entry) => {
          const e = entry as tar.ReadEntry;
          const p = clean(path);
          const known = e.type === 'File' && (RECORD_PATH.test(p) || BLOB_PATH.test(p) || TAG_PATH.test(p));
          if (!known || (!BLOB_PATH.test(p) && e.size > MAX_RECORD_BYTES)) return false;
          budget -= e.size;
          if (budget < 0) over = true; // the rest is read through (CPU only) but never written
          return !over;
        },
      });
    } catch (e) {
      result.error = (e as Error).message;
    }
    if (over) result.error = `it unpacks to more than ${opts.maxBytes !== undefined ? `${opts.maxBytes} bytes` : 'the free space'}; stopped there`;
    if (st.size === 0) result.error = 'the file is empty';
    for (const sub of await listDir(join(staging, 'blobs'))) {
      for (const sha of await listDir(join(staging, 'blobs', sub))) {
        const src = join(staging, 'blobs', sub, sha);
        if (!BLOB_PATH.test(`blobs/${sub}/${sha}`) || (await hashFile(src).catch(() => '')) !== sha) { result.skippedBlobs++; continue; }
        const moved = await moveIn(src, join(dir, 'blobs', sub, sha));
        if (moved) result.blobs++; else result.present++;
      }
    }
    for (const name of await listDir(join(staging, 'records'))) {
      if (TAG_PATH.test(`records/${name}`)) continue;
      const key = RECORD_PATH.exec(`records/${name}`)?.[1];
      const record = key ? await readRecord(join(staging, 'records', name), key) : undefined;
      const haveBlobs = record && (await Promise.all(record.files.map((f) => fs.access(join(dir, 'blobs', f.sha256.slice(0, 2), f.sha256)).then(() => true, () => false)))).every(Boolean);
      const signed = !opts.signatureKey || (key !== undefined && await tagVerifies(opts.signatureKey, key, staging));
      if (!record || !haveBlobs || !signed) { result.skippedRecords++; continue; }
      const moved = await moveIn(join(staging, 'records', name), join(dir, 'records', name));
      if (moved) result.records++; else result.present++;
    }
  } finally {
    // A damaged archive can make tar give up while its last file is still being closed: retry the removal.
    await fs.rm(staging, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  }
  if (result.error) {
    throw new UserError(`cache import: ${file} is not a complete sovereign cache archive: ${result.error}`, {
      hint: `kept what verified (${result.records} records, ${result.blobs} blobs); make archives with \`sovereign cache export FILE\``,
    });
  }
  return result;
}

async function tagVerifies(secret: string, key: string, staging: string): Promise<boolean> {
  const tag = await fs.readFile(join(staging, 'records', `${key}.tag`), 'utf8').catch(() => undefined);
  if (tag === undefined) return false;
  return sameTag(recordMac(secret, key, await fs.readFile(join(staging, 'records', `${key}.json`))), tag.trim());
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
  await fs.chmod(src, 0o644);
  await renameDurable(src, dest);
  return true;
}

const clean = (p: string) => p.replace(/^\.\//, '');
const listDir = (p: string) => fs.readdir(p).catch(() => [] as string[]);
