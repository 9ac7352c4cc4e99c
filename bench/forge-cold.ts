// Manual benchmark: cold, then warm, `run forge:build` (or another target, e.g. forge:start) of the real vm/forge
// payload on the local device, with Debian's docker-registry on loopback as the STAND-IN for codeberg.org serving a
// STAND-IN Forgejo image: busybox plus test/support/forgejo-standin.sh at /app/gitea/gitea (where the real image
// has its binary), which does what vm/forge/init.sh asks of the binary (version, secrets, a PostgreSQL login with
// forge's password, HTTPS on 443). Only the upstream image is a stand-in: config, Dockerfile, init.sh and the
// engine are the real ones. After a `:start` target it runs `test --forge` and stops the VMs it started.
// Usage (as root, reaches Debian's mirror; run `npm run build` first): node --import tsx bench/forge-cold.ts [target]
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkout, sovereign } from '../test/support/cli.ts';
import { busyboxImage, startDockerd } from '../test/support/dockerd.ts';
import { pushStandInImage, startRegistry } from '../test/support/registry.ts';

const target = process.argv[2] ?? 'forge:build';
const PIN = "FORGEJO_IMAGE: 'codeberg.org/forgejo/forgejo:11.0.15'";
const dockerd = await startDockerd();
const registry = await startRegistry();
const root = checkout('sov-bench-forge-');
const env = { DOCKER_HOST: dockerd.host };

/** `sovereign ARGS --json` in the checkout; prints the wall time and every task that took 0.1 s or more. */
async function timed(label: string, args: string[]): Promise<void> {
  const t = Date.now();
  const r = await sovereign([...args, '--json'], { cwd: root, env });
  const secs = (Date.now() - t) / 1000;
  if (r.code !== 0) {
    const consoles = ['sql', 'forge'].map((s) => { try { return `--- ${s} console\n${readFileSync(join(root, '.sovereign/devices/local/vm', s, 'console.log'), 'utf8').split('\n').slice(-25).join('\n')}`; } catch { return ''; } });
    throw new Error(`${args.join(' ')} failed (exit ${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}\n${consoles.join('\n')}`);
  }
  const summary = JSON.parse(r.stdout) as { tasks: { task: string; outcome: string; durationMs?: number; output?: string[] }[] };
  const steps = summary.tasks.filter((x) => (x.durationMs ?? 0) >= 100).map((x) => `${x.task} ${((x.durationMs ?? 0) / 1000).toFixed(1)}s`);
  console.log(`${label} ${args.join(' ')} with the stand-in registry: ${secs.toFixed(1)}s (${steps.join(', ') || 'no step over 0.1 s'})`);
  if (args[0] === 'test') for (const x of summary.tasks) for (const line of x.output ?? []) console.log(`  ${line}`);
}

let started = false;
try {
  const base = await busyboxImage(dockerd.env, 'sov-standin-busybox:1');
  const files = { '/app/gitea/gitea': join(import.meta.dirname, '..', 'test', 'support', 'forgejo-standin.sh') };
  await pushStandInImage({ dockerEnv: dockerd.env, registry, path: 'forgejo/forgejo:11.0.15', base, files });

  const configFile = join(root, 'sovereign.config.ts');
  const config = readFileSync(configFile, 'utf8');
  if (!config.includes(PIN)) throw new Error(`sovereign.config.ts no longer pins ${PIN}: update this benchmark`);
  writeFileSync(configFile, config.replace(PIN, `FORGEJO_IMAGE: { image: 'codeberg.org/forgejo/forgejo:11.0.15', mirror: '${registry.host}' }`));
  started = target.endsWith(':start');
  await timed('cold', ['run', target]);
  console.log(`lock file written: ${readFileSync(join(root, 'sovereign.lock.json'), 'utf8').trim()}`);
  await timed('warm', ['run', target]);
  if (started) await timed('then', ['test', '--forge']);
} finally {
  if (started) await sovereign(['stop', '--forge', '--sql'], { cwd: root, env });
  rmSync(root, { recursive: true, force: true });
  await registry.stop();
  await dockerd.stop();
}
