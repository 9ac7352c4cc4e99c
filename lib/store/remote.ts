// The remote store: records and blobs as artifacts on a Turborepo v8 remote-cache server; it never fails a build.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gunzipSync, gzipSync } from 'node:zlib';
import type { RemoteCacheInput } from '../config.ts';
import { parseSize } from '../config.ts';
import { renameDurable, roomFor, tmpName } from '../fsutil.ts';
import { gzipBlocks } from './gzip-blocks.ts';
import { parseRecord } from './record.ts';
import { ArtifactHttp, Failure, readCapped } from './remote-http.ts';
import { ArtifactSigner, recordArtifactId, sameTag } from './remote-signing.ts';
import type { CacheRecord, Store, TransferProgress } from './store.ts';

export type RemoteMode = 'off' | 'read' | 'read-write';

export interface RemoteStoreOptions {
  /** Server base URL, e.g. `http://127.0.0.1:3000` (the store appends `/v8/artifacts/<hash>`). */
  url: string;
  /** Bearer token; comes from the environment only. */
  token: string;
  /** Team or slug: `team_…` goes as `teamId=`, anything else as `slug=` (what turbo does). */
  team: string;
  mode: 'read' | 'read-write';
  /** HMAC-SHA256 key: when set, uploads carry `x-artifact-tag` and downloads without a valid one are rejected. */
  signatureKey?: string;
  /** Largest compressed artifact uploaded, in bytes; bigger ones are skipped with a warning. */
  maxUploadSize?: number;
  /** A request idle this long (no bytes either way) is abandoned. Default 30 s. */
  timeoutMs?: number;
  /** Extra attempts after a transient failure (connection refused/reset, timeout, 5xx, 429). Default 3. */
  retries?: number;
  /** First backoff delay; doubles each attempt. Default 200 ms. */
  retryDelayMs?: number;
  /** Where compressed uploads are staged (they must be complete to be signed and sized). Default os.tmpdir(). */
  tmpDir?: string;
  /** gzip level 1–9 for blocks that compress (others are stored). Default 1: images are large, level 9 is rarely worth its time. */
  compressionLevel?: number;
  /** Every problem ends here, as one line; the store then answers "miss". */
  onWarning: (message: string) => void;
}

/** Compressed record bodies larger than this are not records. */
const MAX_RECORD_BYTES = 4 * 1024 * 1024;

export class RemoteStore implements Store {
  readonly name = 'remote';
  /** Blobs whose copy on the server failed verification this run. */
  private readonly bad = new Set<string>();
  private readonly http: ArtifactHttp;
  private readonly signer: ArtifactSigner;

  constructor(private readonly opts: RemoteStoreOptions) {
    this.http = new ArtifactHttp(opts);
    this.signer = new ArtifactSigner(opts.signatureKey, opts.team);
  }

  /** False once the breaker tripped. */
  get available(): boolean { return !this.http.down; }
  private get writable(): boolean { return this.opts.mode === 'read-write' && !this.http.down && !this.http.noWrites; }

  async getRecord(key: string): Promise<CacheRecord | undefined> {
    return this.http.guard(`record ${key}`, undefined, async () => {
      const id = recordArtifactId(key);
      const res = await this.http.send('GET', id);
      if (!(await this.http.ok(res))) return undefined;
      const body = await readCapped(res, MAX_RECORD_BYTES);
      const check = this.signer.check(id, res.headers['x-artifact-tag'], (mac) => mac.update(body));
      if (check) return this.reject(`record ${key}`, check);
      let record: CacheRecord | undefined;
      try { record = parseRecord(JSON.parse(gunzipSync(body, { maxOutputLength: 4 * MAX_RECORD_BYTES }).toString('utf8')), key); } catch { /* reported below */ }
      return record ?? this.reject(`record ${key}`, 'not a valid cache record');
    });
  }

  async putRecord(record: CacheRecord): Promise<boolean> {
    if (!this.writable) return false;
    const id = recordArtifactId(record.key);
    const body = gzipSync(JSON.stringify(record));
    const tag = this.signer.sign(id, (mac) => mac.update(body));
    return this.http.guard(`upload of record ${record.key}`, false, async () => {
      const res = await this.http.send('PUT', id, { body, headers: { ...tag, 'x-artifact-duration': String(Math.round(record.durationMs)) } });
      return this.http.ok(res, true, true);
    });
  }

  async hasBlob(sha256: string): Promise<boolean> {
    return this.http.guard(`blob ${short(sha256)}`, false, async () => this.http.ok(await this.http.send('HEAD', sha256), true));
  }

  async fetchBlob(sha256: string, size: number, dest: string, progress?: TransferProgress): Promise<boolean> {
    return this.http.guard(`blob ${short(sha256)}`, false, async () => {
      const res = await this.http.send('GET', sha256);
      if (!(await this.http.ok(res))) return false;
      await fs.mkdir(dirname(dest), { recursive: true });
      // The size comes from a record the server sent: never let it fill the disk (the download stops at it).
      const room = await roomFor(dirname(dest));
      if (size > room) {
        res.destroy();
        return this.reject(`blob ${short(sha256)}`, `its record claims ${size} bytes, more than the ${Math.max(0, room)} that fit on ${dirname(dest)} (free space less 256 MiB)`) ?? false;
      }
      const tmp = tmpName(dest);
      try {
        const problem = await this.download(res, sha256, size, tmp, progress);
        if (problem) {
          this.bad.add(sha256); // the good copy this machine makes next must replace it on the server
          return this.reject(`blob ${short(sha256)}`, problem) ?? false;
        }
        await renameDurable(tmp, dest);
        return true;
      } finally {
        await fs.rm(tmp, { force: true });
      }
    });
  }

  async putBlob(sha256: string, path: string, progress?: TransferProgress): Promise<boolean> {
    if (!this.writable) return false;
    // Content-addressed: a blob another machine uploaded is not sent again — unless its copy there is bad.
    if (!this.bad.has(sha256) && (await this.hasBlob(sha256))) return true;
    if (!this.writable) return false;
    const parent = this.opts.tmpDir ?? tmpdir();
    const dir = await fs.mkdir(parent, { recursive: true }).then(() => fs.mkdtemp(join(parent, 'upload-'))).catch(() => undefined);
    if (!dir) return this.reject(`upload of blob ${short(sha256)}`, 'cannot create a staging directory') ?? false;
    try {
      // One monotonic progress over the file's size: compressing is the first half, sending the second.
      const raw = await fs.stat(path).then((st) => st.size, () => 0); // unreadable: stage() says so
      const half = (frac: number, second: boolean) => progress?.(Math.round(raw * (second ? 0.5 + frac / 2 : frac / 2)), raw);
      const staged = await this.stage(path, sha256, join(dir, 'artifact.gz'), (done) => half(raw ? done / raw : 1, false));
      if (typeof staged === 'string') { this.opts.onWarning(`remote cache: skipped upload of blob ${short(sha256)}: ${staged}`); return false; }
      return await this.http.guard(`upload of blob ${short(sha256)}`, false, async () => {
        const res = await this.http.send('PUT', sha256, { body: staged, headers: staged.tag, progress: (sent, total) => half(total ? sent / total : 1, true) });
        return this.http.ok(res, true, true);
      });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  /** Compresses `path` into `file`, signing what will be sent; a string says why it is not uploaded. */
  private async stage(path: string, id: string, file: string, onRead: (bytes: number) => void): Promise<{ file: string; size: number; tag: Record<string, string> } | string> {
    const mac = this.signer.mac(id);
    const max = this.opts.maxUploadSize;
    let size = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (max !== undefined && size > max) return cb(new Failure(`larger than maxUploadSize (${max} bytes)`, 'rejected'));
        mac?.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      let read = 0;
      const reading = new Transform({ transform(c: Buffer, _e, cb) { read += c.length; onRead(read); cb(null, c); } });
      await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), reading, gzipBlocks({ level: this.opts.compressionLevel ?? 1 }), count, createWriteStream(file));
    } catch (e) {
      return e instanceof Failure ? e.message : `cannot read ${path}: ${(e as Error).message}`;
    }
    return { file, size, tag: mac ? { 'x-artifact-tag': mac.digest('base64') } : {} };
  }

  /** Streams a response through (signature) → gunzip → sha256 into `tmp`; a string says what was wrong. */
  private async download(res: http.IncomingMessage, sha256: string, size: number, tmp: string, progress?: TransferProgress): Promise<string | undefined> {
    const tag = res.headers['x-artifact-tag'];
    const mac = this.signer.mac(sha256);
    if (mac && typeof tag !== 'string') { res.resume(); return 'unsigned artifact (signature is on)'; }
    const hash = createHash('sha256');
    let done = 0;
    const signed = new Transform({ transform(c: Buffer, _e, cb) { mac?.update(c); cb(null, c); } });
    const hashed = new Transform({
      transform(c: Buffer, _e, cb) {
        done += c.length;
        if (done > size) return cb(new Failure(`more than the ${size} bytes expected`, 'rejected'));
        hash.update(c);
        progress?.(done, size);
        cb(null, c);
      },
    });
    try {
      await pipeline(res, signed, createGunzip({ chunkSize: 256 * 1024 }), hashed, createWriteStream(tmp));
    } catch (e) {
      if (e instanceof Failure) return e.message;
      if ((e as NodeJS.ErrnoException).code?.startsWith('Z_')) return `not a gzip stream (${(e as Error).message})`;
      throw e; // connection trouble: retried by guard
    }
    if (mac && !sameTag(mac.digest(), tag as string)) return 'signature mismatch (x-artifact-tag)';
    const got = hash.digest('hex');
    if (got !== sha256) return `sha256 mismatch: got ${short(got)}`;
    if (done !== size) return `size mismatch: got ${done} bytes, expected ${size}`;
    return undefined;
  }

  /** Bad data from the server: warn and treat as a miss (the build goes on locally). */
  private reject(what: string, why: string): undefined {
    this.opts.onWarning(`remote cache: rejected ${what}: ${why}`);
    return undefined;
  }
}

/** Remote options from config + environment + the `--remote-cache` flag; undefined (with a reason) when there is no remote. */
export function remoteOptions(
  remote: RemoteCacheInput | undefined,
  env: NodeJS.ProcessEnv,
  modeOverride?: RemoteMode,
): { options?: Omit<RemoteStoreOptions, 'onWarning'>; reason?: string } {
  const url = env.SOVEREIGN_REMOTE_CACHE_URL || env.TURBO_API || remote?.url;
  const mode = modeOverride ?? remote?.mode ?? 'read-write';
  if (!url || mode === 'off') return {};
  const token = env.SOVEREIGN_REMOTE_CACHE_TOKEN || env.TURBO_TOKEN;
  if (!token) return { reason: `remote cache ${safeOrigin(url)} is configured but no token is set (SOVEREIGN_REMOTE_CACHE_TOKEN or TURBO_TOKEN); using the local cache only` };
  const signatureKey = env.SOVEREIGN_REMOTE_CACHE_SIGNATURE_KEY || env.TURBO_REMOTE_CACHE_SIGNATURE_KEY || undefined;
  if (remote?.signature && !signatureKey) {
    return { reason: 'remote cache signature is on but no key is set (SOVEREIGN_REMOTE_CACHE_SIGNATURE_KEY or TURBO_REMOTE_CACHE_SIGNATURE_KEY); using the local cache only' };
  }
  const team = env.SOVEREIGN_REMOTE_CACHE_TEAM || env.TURBO_TEAM || remote?.slug || remote?.team || 'sovereign';
  const maxUploadSize = remote?.maxUploadSize !== undefined ? parseSize(remote.maxUploadSize) : undefined;
  return { options: { url, token, team, mode, signatureKey, maxUploadSize, timeoutMs: remote?.timeoutMs } };
}

function safeOrigin(url: string): string {
  try { return new URL(url).origin; } catch { return '(invalid URL)'; }
}

const short = (sha: string) => sha.slice(0, 12);
