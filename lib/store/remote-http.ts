// The remote store's HTTP side: requests to a Turborepo v8 artifacts endpoint, retries with backoff, and the
// breaker that drops the remote for the rest of a run; every failure ends as one warning, never a failed build.
import { createReadStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RemoteStoreOptions } from './remote.ts';
import type { TransferProgress } from './store.ts';

/** Why an attempt failed; `transient` is retried, `down` drops the remote for the rest of the run. */
export class Failure extends Error {
  constructor(message: string, readonly kind: 'transient' | 'down' | 'no-writes' | 'rejected', readonly retryAfterMs?: number) {
    super(message);
  }
}

export type HttpOptions = Pick<RemoteStoreOptions, 'url' | 'token' | 'team' | 'timeoutMs' | 'retries' | 'retryDelayMs' | 'onWarning'>;

export class ArtifactHttp {
  readonly base: URL;
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  /** Circuit breaker: after the server failed us once (after retries), stop asking it this run. */
  down = false;
  /** The server refused an upload (403): reads go on, writes stop for this run. */
  noWrites = false;

  constructor(private readonly opts: HttpOptions) {
    this.base = new URL(opts.url.endsWith('/') ? opts.url : `${opts.url}/`);
    this.agent = this.base.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 8 }) : new http.Agent({ keepAlive: true, maxSockets: 8 });
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.retries = opts.retries ?? 3;
    this.retryDelayMs = opts.retryDelayMs ?? 200;
  }

  /** true for 2xx, false for 404 (a miss); throws a Failure for everything else. `drain`: the caller does not read the body. */
  async ok(res: http.IncomingMessage, drain = false, write = false): Promise<boolean> {
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) { if (drain) res.resume(); return true; }
    const text = (await readCapped(res, 4096).catch(() => Buffer.alloc(0))).toString('utf8').slice(0, 200);
    const said = text ? `: ${text}` : '';
    if (status === 404) return false;
    if (status === 401) throw new Failure(`the server refused the token (401)${said}`, 'down');
    if (status === 403) throw new Failure(`forbidden (403)${said}`, write ? 'no-writes' : 'down');
    if (status === 429 || status >= 500) throw new Failure(`HTTP ${status}${said}`, 'transient', retryAfter(res.headers['retry-after']));
    throw new Failure(`HTTP ${status}${said}`, 'rejected');
  }

  /** Runs an attempt with retries; any failure becomes a warning and `miss`. */
  async guard<T>(what: string, miss: T, attempt: () => Promise<T>): Promise<T> {
    for (let i = 0; !this.down; i++) {
      try {
        return await attempt();
      } catch (e) {
        const f = e instanceof Failure ? e : asFailure(e);
        if (f.kind === 'transient' && i < this.retries) {
          await sleep(f.retryAfterMs ?? this.retryDelayMs * 2 ** i * (0.75 + Math.random() / 2));
          continue;
        }
        this.fail(what, f, i + 1);
        return miss;
      }
    }
    return miss;
  }

  private fail(what: string, f: Failure, attempts: number): void {
    const where = this.base.origin;
    if (f.kind === 'rejected') return this.opts.onWarning(`remote cache: ${what}: ${f.message}`);
    if (f.kind === 'no-writes') {
      if (!this.noWrites) this.opts.onWarning(`remote cache ${where} does not accept uploads (${f.message}); reading only for the rest of this run`);
      this.noWrites = true;
      return;
    }
    if (this.down) return;
    this.down = true;
    const tries = f.kind === 'transient' ? ` after ${attempts} attempt${attempts > 1 ? 's' : ''}` : '';
    this.opts.onWarning(`remote cache ${where} failed (${what}: ${f.message})${tries}; using the local cache only for the rest of this run`);
  }

  private artifactUrl(id: string): URL {
    const u = new URL(`v8/artifacts/${id}`, this.base);
    u.searchParams.set(this.opts.team.startsWith('team_') ? 'teamId' : 'slug', this.opts.team);
    return u;
  }

  /** One HTTP request; resolves with the response (any status), follows GET redirects (auth stays on its origin). */
  send(method: 'GET' | 'HEAD' | 'PUT', id: string, opts: { body?: Buffer | { file: string; size: number }; headers?: Record<string, string>; progress?: TransferProgress } = {}, url = this.artifactUrl(id), hops = 0): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { 'user-agent': 'sovereign', ...opts.headers };
      if (url.origin === this.base.origin) headers.authorization = `Bearer ${this.opts.token}`;
      const body = opts.body;
      if (body) {
        headers['content-type'] = 'application/octet-stream';
        headers['content-length'] = String(Buffer.isBuffer(body) ? body.length : body.size);
      }
      const lib = url.protocol === 'https:' ? https : http;
      const req = lib.request(url, { method, headers, agent: url.origin === this.base.origin ? this.agent : undefined }, (res) => {
        const location = res.headers.location;
        if (method !== 'PUT' && location && [301, 302, 303, 307, 308].includes(res.statusCode ?? 0) && hops < 3) {
          res.resume();
          resolve(this.send(method, id, opts, new URL(location, url), hops + 1));
          return;
        }
        resolve(res);
      });
      req.setTimeout(this.timeoutMs, () => req.destroy(new Failure(`no data for ${Math.round(this.timeoutMs / 1000)} s`, 'transient')));
      req.on('error', reject);
      if (!body) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        let sent = 0;
        const count = new Transform({ transform(c: Buffer, _e, cb) { sent += c.length; opts.progress?.(sent, body.size); cb(null, c); } });
        pipeline(createReadStream(body.file, { highWaterMark: 1 << 20 }), count, req).catch(reject);
      }
    });
  }
}

/** A response body, refused past `max` bytes (a server must not make us buffer without bound). */
export async function readCapped(res: http.IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > max) { res.destroy(); throw new Failure(`response larger than ${max} bytes`, 'rejected'); }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

function asFailure(e: unknown): Failure {
  const err = e as NodeJS.ErrnoException;
  const transient = ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE'];
  if (transient.includes(err?.code ?? '') || /aborted|socket hang up/i.test(err?.message ?? '')) return new Failure(err.code ?? err.message, 'transient');
  return new Failure(err?.message ?? String(e), 'rejected');
}

function retryAfter(h: string | undefined): number | undefined {
  const s = Number(h);
  return Number.isFinite(s) && s >= 0 ? Math.min(s * 1000, 10_000) : undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
