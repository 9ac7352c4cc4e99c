// Picks the store for a run: the local store, tiered with a remote cache when one is configured.
import type { Config } from '../config.ts';
import { localStore } from './local.ts';
import type { Store } from './store.ts';

import type { RemoteMode } from './remote.ts';

export type { RemoteMode };

export async function openStore(config: Config, root: string, opts: { mode?: RemoteMode; onWarning(message: string): void }): Promise<Store> {
  const remoteWanted = (config.cache.remote || process.env.SOVEREIGN_REMOTE_CACHE_URL || process.env.TURBO_API) && opts.mode !== 'off';
  if (!remoteWanted) return localStore(config, root);
  // Loaded only when a remote is in play, so local-only runs start faster.
  const { createStore } = await import('./tiered.ts');
  return createStore(config, { root, onWarning: opts.onWarning, remoteMode: opts.mode });
}
