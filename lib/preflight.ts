// Preflight: is this machine and the device ready (tools, docker daemon, device, .env)? Pure data; the CLI prints it.
import { join } from 'node:path';
import type { Config, Device } from './config.ts';
import { UserError } from './error.ts';
import { exec } from './exec.ts';
import { openTransport } from './device/open.ts';
import { PROVIDED_SECRETS, readEnvFile, unprovided, unsendable } from './secrets.ts';
import { userInfo } from 'node:os';
import { archSpec } from './arch.ts';
import { bootstrapMode, bootstrapper, checkCanBootstrap } from './build/base.ts';
import { checkDaemon } from './build/builder.ts';
import type { EnvFile } from './secrets.ts';

export interface PreflightCheck {
  name: string;
  ok: boolean;
  /** What was found (a version, a state, the error). */
  detail: string;
  /** What to do when it is not ok. */
  fix?: string;
}

export interface PreflightOptions {
  /** Repo root (where `.env` and a local device live). */
  root: string;
  /** Services whose `.env` keys are checked (default: all). */
  services?: string[];
}

const MIN_NODE = 20;
const PROBE_TIMEOUT_MS = 15_000;

/** Runs every check (concurrently) and returns them in a fixed order. */
export async function preflight(config: Config, device: Device, opts: PreflightOptions): Promise<PreflightCheck[]> {
  const builder = config.builder;
  const client = device.transport === 'ssh' ? tool('ssh client', 'ssh', ['-V'], 'apt-get install -y openssh-client')
    : device.transport === 'adb' ? tool('adb client', 'adb', ['version'], 'apt-get install -y adb') : undefined;
  const checks = await Promise.all([
    nodeVersion(),
    tool(`${builder} on PATH`, builder, ['--version'], `apt-get install -y ${builder === 'docker' ? 'docker.io' : 'podman'}`),
    builderReachable(builder),
    tool('mkfs.ext4', 'mkfs.ext4', ['-V'], 'apt-get install -y e2fsprogs'),
    tool('debugfs', 'debugfs', ['-V'], 'apt-get install -y e2fsprogs'),
    ...(client ? [client] : []),
    deviceChecks(device, opts.root),
    ...([...config.services.values()].some((s) => s.base && 'debootstrap' in s.base) ? [baseCheck(device)] : []),
    envChecks(config, opts),
  ]);
  return checks.flat();
}

async function nodeVersion(): Promise<PreflightCheck> {
  const major = Number(process.versions.node.split('.')[0]);
  return { name: 'node', ok: major >= MIN_NODE, detail: `v${process.versions.node}`, fix: `install Node.js ${MIN_NODE} or newer` };
}

/** A tool answers its version command. */
async function tool(name: string, cmd: string, args: string[], fix: string): Promise<PreflightCheck> {
  try {
    const r = await exec(cmd, args, { nothrow: true, timeoutMs: PROBE_TIMEOUT_MS });
    const line = (r.stdout + r.stderr).split('\n').find((l) => l.trim()) ?? '';
    return { name, ok: r.code === 0, detail: line.trim(), fix };
  } catch (e) {
    return { name, ok: false, detail: message(e), fix };
  }
}

async function builderReachable(builder: 'docker' | 'podman'): Promise<PreflightCheck> {
  const name = `${builder} daemon reachable`;
  try {
    return { name, ok: true, detail: `server ${await checkDaemon(builder)}` };
  } catch (e) {
    return { name, ok: false, detail: message(e), fix: e instanceof UserError ? e.hint : undefined };
  }
}

/** Reachability through the device's own transport, then the hypervisor there (qemu-system-<arch> or crosvm). */
async function deviceChecks(device: Device, root: string): Promise<PreflightCheck[]> {
  const name = `device '${device.name}' reachable`;
  try {
    const transport = await openTransport(device, root);
    try {
      await transport.run('true', { timeoutMs: PROBE_TIMEOUT_MS });
      const qemu = archSpec(device.arch).qemu;
      const hv = device.hypervisor === 'qemu' ? qemu.binary : 'crosvm';
      const found = await transport.run(`command -v ${hv} || { [ -x /apex/com.android.virt/bin/${hv} ] && echo /apex/com.android.virt/bin/${hv}; }`, { timeoutMs: PROBE_TIMEOUT_MS, nothrow: true });
      const hvFix = device.hypervisor === 'qemu' ? `apt-get install -y --no-install-recommends ${qemu.package} (on the device)` : 'crosvm ships with Android\'s virtualization APEX (com.android.virt)';
      return [
        { name, ok: true, detail: transport.label },
        { name: `${hv} on device '${device.name}'`, ok: found.code === 0 && found.stdout.trim() !== '', detail: found.stdout.trim() || 'not found', fix: hvFix },
      ];
    } finally {
      await transport.close();
    }
  } catch (e) {
    return [{ name, ok: false, detail: message(e), fix: e instanceof UserError && e.hint ? e.hint : `check the devices.${device.name} entry in sovereign.config.ts` }];
  }
}

/** Whether this machine can build a base image for the device's architecture, as this user (what needs root, and why). */
async function baseCheck(device: Device): Promise<PreflightCheck> {
  const tool = await bootstrapper();
  const how = tool === 'mmdebstrap' ? `mmdebstrap --mode=${bootstrapMode()}` : 'debootstrap';
  const name = `base image for ${archSpec(device.arch).deb} (${how})`;
  try {
    await checkCanBootstrap(tool, device.arch);
    return { name, ok: true, detail: process.getuid?.() === 0 ? 'as root' : `as ${userInfo().username}: no root needed` };
  } catch (e) {
    return { name, ok: false, detail: message(e), fix: e instanceof UserError ? e.hint : undefined };
  }
}

/** `.env` exists when any service declares secrets, and holds every declared key (names only: values are never shown). */
export async function envChecks(config: Config, opts: PreflightOptions): Promise<PreflightCheck[]> {
  const services = [...config.services.values()].filter((s) => (!opts.services || opts.services.includes(s.name)) && s.secrets.length > 0);
  if (services.length === 0) return [];
  let env: EnvFile;
  try {
    env = await readEnvFile(join(opts.root, '.env'));
  } catch (e) {
    return [{ name: '.env', ok: false, detail: message(e), fix: envFix(e) }];
  }
  const generated = 'the first deploy generates random values for missing keys (edit .env to choose your own)';
  const cannot = services.map((s) => unprovided(s, s.secrets.filter((k) => !env.has(k)), '.env')).filter((e) => e !== undefined);
  const owed = cannot.map((e) => ({ name: '.env keys you provide', ok: false, detail: e.message, fix: e.hint }));
  if (!env.exists) return [{ name: '.env', ok: true, detail: `not there yet: ${generated}` }, ...owed];
  return [
    { name: '.env', ok: true, detail: `${env.size} keys` },
    ...owed,
    ...services.map((s) => {
      const missing = s.secrets.filter((k) => !env.has(k) && !(k in PROVIDED_SECRETS));
      const bad = s.secrets.map((k) => (env.has(k) ? unsendable(k, env.get(k)!) : undefined)).find(Boolean);
      if (bad) return { name: `.env keys for ${s.name}`, ok: false, detail: bad, fix: 'keep each value on one line (no \\n escape) in .env' };
      return { name: `.env keys for ${s.name}`, ok: true, detail: missing.length ? `${missing.join(', ')} not set: ${generated}` : s.secrets.join(', ') };
    }),
  ];
}

/** What to do about a .env that cannot be read: the hint follows the cause, not always the line syntax. */
function envFix(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EISDIR') return '.env must be a file of KEY=VALUE lines: move the folder away';
  if (code === 'EACCES' || code === 'EPERM') return 'let this user read .env (it should be yours, mode 0600: chmod 600 .env)';
  return 'fix the line named above (KEY=VALUE)';
}

function message(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0] : String(e);
}
