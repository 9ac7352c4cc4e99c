// The one check of a cache record's shape, for records that come from outside this process (remote, archive, disk).
import { canonicalJson, sha256 } from '../hash.ts';
import type { CacheRecord, OutputFile } from './store.ts';
import { isObject } from '../guards.ts';

/** A task's output hash: its files (name, content, exec bit) and its value. What dependents' keys use. */
export function outputHashOf(files: Pick<OutputFile, 'name' | 'sha256' | 'mode'>[], value: unknown): string {
  return sha256(canonicalJson({ files: files.map((f) => [f.name, f.sha256, f.mode]), value: value ?? null }));
}

const SHA256 = /^[0-9a-f]{64}$/;
/** Keys become file names (`records/<key>.json`): no separators, no leading dot. */
const KEY = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

/** A record read from JSON, or undefined when any field is missing or malformed (never trust the bytes). */
export function parseRecord(value: unknown, expectedKey?: string): CacheRecord | undefined {
  if (!isObject(value)) return undefined;
  const r = value as Record<string, unknown>;
  if (r.schema !== 1 || typeof r.key !== 'string' || !KEY.test(r.key)) return undefined;
  if (expectedKey !== undefined && r.key !== expectedKey) return undefined;
  if (typeof r.task !== 'string' || typeof r.outputHash !== 'string' || typeof r.createdAt !== 'string') return undefined;
  if (typeof r.durationMs !== 'number' || !Number.isFinite(r.durationMs)) return undefined;
  if (!isObject(r.tools) || Object.values(r.tools).some((v) => typeof v !== 'string')) return undefined;
  if (!Array.isArray(r.files) || !r.files.every(isOutputFile)) return undefined;
  // Self-checking: a record whose output hash does not follow from its files and value is corrupt.
  if (r.outputHash !== outputHashOf(r.files as OutputFile[], r.value)) return undefined;
  return value as unknown as CacheRecord;
}

/**
 * Why a parsed record does not fit the step that will use it (undefined when it does): its file names must be
 * exactly the step's outputs, and its value must have the step's shape (no value for steps without one). A record
 * from outside (an import, a remote) could otherwise add files or feed a crafted value (`--help`) to a tool.
 */
export function recordMismatch(rec: CacheRecord, outputs: string[], valueShape?: (value: unknown) => boolean): string | undefined {
  const names = rec.files.map((f) => f.name).sort();
  const want = [...outputs].sort();
  if (names.length !== want.length || names.some((n, i) => n !== want[i])) return `names files [${names.join(', ')}], not the step's outputs [${want.join(', ')}]`;
  const fits = valueShape ? valueShape(rec.value) : rec.value === undefined || rec.value === null;
  return fits ? undefined : `carries a value of the wrong shape (${JSON.stringify(rec.value)?.slice(0, 80)})`;
}

export const isSha256 = (s: string) => SHA256.test(s);
export const isRecordKey = (s: string) => KEY.test(s);

function isOutputFile(f: unknown): f is OutputFile {
  if (!isObject(f)) return false;
  const { name, sha256, size, mode } = f as Record<string, unknown>;
  // A name escaping the task's output directory would let a cache entry write anywhere.
  const safeName = typeof name === 'string' && name !== '' && !name.startsWith('/') && !name.split('/').some((p) => p === '..' || p === '');
  return safeName && typeof sha256 === 'string' && SHA256.test(sha256)
    && Number.isSafeInteger(size) && (size as number) >= 0
    // Only what a run records (lib/rebuild/artifact.ts): a setuid or world-writable mode from outside is never restored.
    && (mode === 0o644 || mode === 0o755);
}

