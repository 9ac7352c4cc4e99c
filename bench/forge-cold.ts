// Manual benchmark: cold `run forge:build` (or another target) of the real vm/forge payload on the local device,
// with Debian's docker-registry on loopback as the STAND-IN for codeberg.org serving a stand-in Forgejo image
// (busybox plus a script at /app/gitea/gitea answering --version), reached through the config's `mirror`.
// Usage (as root, reaches Debian's mirror; run `npm run build` first): node --import tsx bench/forge-cold.ts [target]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../lib/exec.ts';
import { checkout, sovereign } from '../test/support/cli.ts';
import { busyboxImage, startDockerd } from '../test/support/dockerd.ts';
import { startRegistry } from '../test/support/registry.ts';

const target = process.argv[2] ?? 'forge:build';
const PIN = "FORGEJO_IMAGE: 'codeberg.org/forgejo/forgejo:11.0.15'";
const dockerd = await startDockerd();
const registry = await startRegistry();
const root = checkout('sov-bench-forge-');
const docker = (args: string[]) => exec('docker', args, { env: { ...dockerd.env, DOCKER_BUILDKIT: '0' } });
try {
  const base = await busyboxImage(dockerd.env, 'sov-standin-busybox:1');
  const ctx = mkdtempSync(join(tmpdir(), 'sov-standin-forgejo-'));
  writeFileSync(join(ctx, 'gitea'), '#!/bin/sh\necho "Forgejo version 11.0.15 (stand-in)"\n', { mode: 0o755 });
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${base}\nCOPY gitea /app/gitea/gitea\n`);
  const ref = `${registry.host}/forgejo/forgejo:11.0.15`;
  await docker(['build', '-q', '-t', ref, ctx]);
  await docker(['push', ref]);
  await docker(['rmi', ref]);
  rmSync(ctx, { recursive: true, force: true });

  const configFile = join(root, 'sovereign.config.ts');
  const config = readFileSync(configFile, 'utf8');
  if (!config.includes(PIN)) throw new Error(`sovereign.config.ts no longer pins ${PIN}: update this benchmark`);
  writeFileSync(configFile, config.replace(PIN, `FORGEJO_IMAGE: { image: 'codeberg.org/forgejo/forgejo:11.0.15', mirror: '${registry.host}' }`));
  const t = Date.now();
  const r = await sovereign(['run', target, '--json'], { cwd: root, env: { DOCKER_HOST: dockerd.host } });
  const secs = (Date.now() - t) / 1000;
  if (r.code !== 0) throw new Error(`run ${target} failed (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
  const summary = JSON.parse(r.stdout) as { tasks: { task: string; outcome: string; durationMs?: number }[] };
  const slow = summary.tasks.filter((x) => (x.durationMs ?? 0) >= 500).map((x) => `${x.task} ${((x.durationMs ?? 0) / 1000).toFixed(1)}s`);
  console.log(`cold ${target} with the stand-in registry: ${secs.toFixed(1)}s (${slow.join(', ')})`);
  console.log(`lock file written: ${readFileSync(join(root, 'sovereign.lock.json'), 'utf8').trim()}`);
} finally {
  rmSync(root, { recursive: true, force: true });
  await registry.stop();
  await dockerd.stop();
}
