// Test fixture: a real turborepo-remote-cache server on loopback, local-disk storage in a temp dir, stopped by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

export interface CacheServer {
  url: string;
  token: string;
  /** Where artifacts land: `<storagePath>/<team>/<hash>` (and `<hash>.tag` when the server keeps signatures). */
  storagePath: string;
  port: number;
  pid: number;
  /** Server log (stdout + stderr), for failure messages. */
  log(): string;
  /** Kills the server (by pid); keeps the storage dir, so a test can restart on it. */
  kill(): Promise<void>;
  /** Kills the server and removes its storage dir. */
  stop(): Promise<void>;
}

export interface CacheServerOptions {
  /** Reuse a storage dir (e.g. restart after kill). */
  storagePath?: string;
  port?: number;
  /** Server-side TURBO_REMOTE_CACHE_SIGNATURE_KEY: the server then stores and returns `x-artifact-tag` (it never checks it). */
  keepSignatures?: boolean;
  /** BODY_LIMIT in bytes (default 2 GiB: disk images). */
  bodyLimit?: number;
  /** Server started with READ_ONLY=true: every PUT answers 403. */
  readOnly?: boolean;
}

const require = createRequire(import.meta.url);

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts the server and waits until `/v8/artifacts/status` answers. */
export async function startCacheServer(opts: CacheServerOptions = {}): Promise<CacheServer> {
  const storagePath = opts.storagePath ?? (await fs.mkdtemp(join(tmpdir(), `sovereign-rc-${process.pid}-`)));
  const token = randomBytes(16).toString('hex');
  const port = opts.port ?? (await freePort());
  const cli = join(require.resolve('turborepo-remote-cache/package.json'), '..', 'dist', 'cli.js');
  let out = '';
  const child: ChildProcess = spawn(process.execPath, [cli], {
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1', // the server binds every interface unless told
      PORT: String(port),
      STORAGE_PROVIDER: 'local',
      STORAGE_PATH: storagePath,
      STORAGE_PATH_USE_TMP_FOLDER: 'false', // otherwise the path is joined under os.tmpdir()
      TURBO_TOKEN: token,
      BODY_LIMIT: String(opts.bodyLimit ?? 2 * 1024 ** 3),
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      ...(opts.keepSignatures ? { TURBO_REMOTE_CACHE_SIGNATURE_KEY: 'server-side-marker' } : {}),
      ...(opts.readOnly ? { READ_ONLY: 'true' } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (c) => { out = (out + c).slice(-20000); });
  child.stderr!.on('data', (c) => { out = (out + c).slice(-20000); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A test that crashes must not leave the server behind.
  const onExit = () => { try { process.kill(child.pid!, 'SIGKILL'); } catch { /* already gone */ } };
  process.once('exit', onExit);
  const url = `http://127.0.0.1:${port}`;
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, 'SIGKILL');
      await exited;
    }
    process.off('exit', onExit);
  };
  const server: CacheServer = {
    url, token, storagePath, port, pid: child.pid!,
    log: () => out,
    kill,
    async stop() { await kill(); await fs.rm(storagePath, { recursive: true, force: true }); },
  };
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const res = await fetch(`${url}/v8/artifacts/status`, { headers: { authorization: `Bearer ${token}` } });
      if (res.ok) return server;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  await server.stop();
  throw new Error(`turborepo-remote-cache did not become ready on ${url}:\n${out}`);
}
