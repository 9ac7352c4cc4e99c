// Manual benchmark: cold, then warm, `run <svc>:build` (or another target, e.g. vault:start) of the real vm/<svc>
// payload of forge or vault on the local device, with Debian's docker-registry on loopback as the STAND-IN for the
// upstream registry serving a STAND-IN upstream image (test/support/standin-images.ts): busybox plus a script where
// the real image has its binary (forge: test/support/forgejo-standin.sh at /app/gitea/gitea; vault:
// test/support/vaultwarden-standin.sh at /vaultwarden and a web vault at /web-vault), doing what the guest's init.sh
// asks of the binary (version, a PostgreSQL login with the service's own password, HTTPS on 443). Only the upstream
// image is a stand-in: config, Dockerfile, init.sh and the engine are the real ones. After a `:start` target it runs
// `test --<svc>` and stops the VMs it started.
// Usage (as root, reaches Debian's mirror; run `npm run build` first): node --import tsx bench/service-cold.ts [target]
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkout, sovereign } from '../test/support/cli.ts';
import { startDockerd } from '../test/support/dockerd.ts';
import { startRegistry } from '../test/support/registry.ts';
import { mirrorPin, pushStandIns } from '../test/support/standin-images.ts';

const target = process.argv[2] ?? 'forge:build';
const service = target.split(':')[0];
if (service !== 'forge' && service !== 'vault') throw new Error(`usage: bench/service-cold.ts <forge|vault>:<task>, not ${target}`);
const dockerd = await startDockerd();
const registry = await startRegistry();
const root = checkout(`sov-bench-${service}-`);
const env = { DOCKER_HOST: dockerd.host };

/** `sovereign ARGS --json` in the checkout; prints the wall time and every task that took 0.1 s or more. */
async function timed(label: string, args: string[]): Promise<void> {
  const t = Date.now();
  const r = await sovereign([...args, '--json'], { cwd: root, env });
  const secs = (Date.now() - t) / 1000;
  if (r.code !== 0) {
    const consoles = ['sql', service].map((s) => { try { return `--- ${s} console\n${readFileSync(join(root, '.sovereign/devices/local/vm', s, 'console.log'), 'utf8').split('\n').slice(-25).join('\n')}`; } catch { return ''; } });
    throw new Error(`${args.join(' ')} failed (exit ${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}\n${consoles.join('\n')}`);
  }
  const summary = JSON.parse(r.stdout) as { tasks: { task: string; outcome: string; durationMs?: number; output?: string[] }[] };
  const steps = summary.tasks.filter((x) => (x.durationMs ?? 0) >= 100).map((x) => `${x.task} ${((x.durationMs ?? 0) / 1000).toFixed(1)}s`);
  console.log(`${label} ${args.join(' ')} with the stand-in registry: ${secs.toFixed(1)}s (${steps.join(', ') || 'no step over 0.1 s'})`);
  if (args[0] === 'test') for (const x of summary.tasks) for (const line of x.output ?? []) console.log(`  ${line}`);
}

let started = false;
try {
  await pushStandIns(dockerd.env, registry, [service]);
  const configFile = join(root, 'sovereign.config.ts');
  writeFileSync(configFile, mirrorPin(readFileSync(configFile, 'utf8'), service, registry.host));
  started = target.endsWith(':start');
  await timed('cold', ['run', target]);
  if (started) for (const line of readFileSync(join(root, '.sovereign/devices/local/vm', service, 'console.log'), 'utf8').split('\n')) if (line.includes('stand-in')) console.log(`  ${service} console: ${line.trim()}`);
  console.log(`lock file written: ${readFileSync(join(root, 'sovereign.lock.json'), 'utf8').trim()}`);
  await timed('warm', ['run', target]);
  if (started) await timed('then', ['test', `--${service}`]);
} finally {
  if (started) await sovereign(['stop', `--${service}`, '--sql'], { cwd: root, env });
  rmSync(root, { recursive: true, force: true });
  await registry.stop();
  await dockerd.stop();
}
