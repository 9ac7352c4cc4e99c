// The store a run uses: the local cache first, then an optional remote; remote hits are kept locally.
import { join } from 'node:path';
import type { Config } from '../config.ts';
import { LocalStore, localStore } from './local.ts';
import { RemoteStore, remoteOptions, type RemoteMode } from './remote.ts';
import type { CacheRecord, Store, TransferProgress } from './store.ts';

export class TieredStore implements Store {
  readonly name: string;
  /** Circuit breaker for a remote that throws (RemoteStore itself never should): one warning, then local only. */
  private remoteOk = true;
  /** Blobs the remote confirmed this run (uploaded or already there). */
  private readonly uploaded = new Set<string>();

  constructor(readonly local: LocalStore, readonly remote: Store | undefined, private readonly onWarning: (message: string) => void) {
    this.name = remote ? `${local.name}+${remote.name}` : local.name;
  }

  async getRecord(key: string): Promise<CacheRecord | undefined> {
    const hit = await this.local.getRecord(key);
    if (hit) return hit;
    const remote = await this.ask((r) => r.getRecord(key), undefined);
    if (remote) await this.local.putRecord(remote); // the next run, and `cache export`, find it here
    return remote;
  }

  async putRecord(record: CacheRecord): Promise<boolean> {
    const stored = await this.local.putRecord(record);
    // A record is shared only when the server has its bytes: otherwise other machines would hit it and then miss every blob.
    const complete = await this.ask(async (r) => {
      for (const f of record.files) if (!this.uploaded.has(f.sha256) && !(await r.hasBlob(f.sha256))) return false;
      return true;
    }, false);
    if (complete) await this.ask((r) => r.putRecord(record), false);
    return stored;
  }

  async hasBlob(sha256: string): Promise<boolean> {
    return (await this.local.hasBlob(sha256)) || (await this.ask((r) => r.hasBlob(sha256), false));
  }

  async fetchBlob(sha256: string, size: number, dest: string, progress?: TransferProgress): Promise<boolean> {
    if (await this.local.fetchBlob(sha256, size, dest, progress)) return true;
    // Downloaded straight to `dest` (verified there), then copied into the local store: one network transfer, no third copy.
    if (!(await this.ask((r) => r.fetchBlob(sha256, size, dest, progress), false))) return false;
    try {
      await this.local.putBlob(sha256, dest);
    } catch (e) {
      this.onWarning(`could not keep blob ${sha256.slice(0, 12)} in the local cache: ${(e as Error).message}`);
    }
    return true;
  }

  async putBlob(sha256: string, path: string, progress?: TransferProgress): Promise<boolean> {
    const stored = await this.local.putBlob(sha256, path);
    if (await this.ask((r) => r.putBlob(sha256, path, progress), false)) this.uploaded.add(sha256);
    return stored;
  }

  async evict(key: string): Promise<void> {
    // Remote servers cannot delete; a bad remote entry is caught again by verification on the next fetch.
    await this.local.evict(key);
  }

  async flush(): Promise<void> {
    await this.local.flush();
  }

  private async ask<T>(call: (remote: Store) => Promise<T>, miss: T): Promise<T> {
    if (!this.remote || !this.remoteOk) return miss;
    try {
      return await call(this.remote);
    } catch (e) {
      this.remoteOk = false;
      this.onWarning(`remote cache failed (${(e as Error).message}); using the local cache only for the rest of this run`);
      return miss;
    }
  }
}

export interface CreateStoreOptions {
  /** Repo root: `config.cache.dir` is relative to it. */
  root: string;
  onWarning: (message: string) => void;
  /** `--remote-cache=off|read|read-write`: beats the config (PR builds pass `read`). */
  remoteMode?: RemoteMode;
  /** Defaults to process.env; tests pass their own. */
  env?: NodeJS.ProcessEnv;
}

/** The run's store from config, environment (URL, token, team, signature key) and the `--remote-cache` flag. */
export function createStore(config: Pick<Config, 'cache'>, opts: CreateStoreOptions): TieredStore {
  const local = localStore(config, opts.root);
  const dir = local.dir;
  const { options, reason } = remoteOptions(config.cache.remote, opts.env ?? process.env, opts.remoteMode);
  if (reason) opts.onWarning(reason);
  const remote = options ? new RemoteStore({ ...options, tmpDir: join(dir, 'tmp'), onWarning: opts.onWarning }) : undefined;
  return new TieredStore(local, remote, opts.onWarning);
}
