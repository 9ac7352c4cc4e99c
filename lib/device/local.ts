// The local transport: this machine stands in for the device; the device root is a plain directory.
import { promises as fs } from 'node:fs';
import { exec } from '../exec.ts';
import { deviceEnv } from './env.ts';
import { DEFAULT_TIMEOUT_MS } from './shell.ts';
import type { Transport, TransportRunOptions, UploadOptions } from './transport.ts';

/** `cwd`: where scripts run (the repo root, so a relative device root resolves as in the config). */
export function localTransport(cwd: string, label = `local ${cwd}`): Transport {
  return {
    kind: 'local',
    label,
    run(script: string, opts: TransportRunOptions = {}) {
      return exec('sh', ['-c', script], {
        cwd,
        env: deviceEnv('local'),
        input: opts.input,
        signal: opts.signal,
        timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        nothrow: opts.nothrow,
      });
    },
    async upload(local: string, remote: string, opts: UploadOptions = {}) {
      const { size, blocks } = await fs.stat(local);
      // --sparse=always keeps the data disk's holes (and turns zero runs into holes).
      await exec('cp', [opts.sparse ? '--sparse=always' : '--sparse=auto', '--', local, remote], { cwd, signal: opts.signal });
      // Bytes moved: for a sparse file only its allocated data is copied.
      const moved = opts.sparse ? Math.min(size, blocks * 512) : size;
      opts.progress?.(moved, moved);
    },
    async close() {},
  };
}
