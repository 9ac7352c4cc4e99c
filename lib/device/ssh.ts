// The ssh transport: the OpenSSH client in batch mode, one shared connection (ControlMaster) per session.
import { createReadStream, promises as fs } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { posix } from 'node:path';
import type { Device } from '../config.ts';
import { UserError } from '../error.ts';
import { exec, tail } from '../exec.ts';
import { deviceEnv } from './env.ts';
import { DEFAULT_TIMEOUT_MS, shQuote, stdinScript } from './shell.ts';
import { sparseBundle } from './sparse.ts';
import type { Transport, TransportRunOptions, UploadOptions } from './transport.ts';

/** ssh exits 255 when the connection (not the remote command) failed. */
const SSH_FAILED = 255;

/** `root`: the repo root, against which a relative identity / known_hosts path in the config resolves. */
export async function sshTransport(device: Device, root: string): Promise<Transport> {
  if (!device.host) throw new UserError(`device '${device.name}' has no host`, { code: 'config', hint: `set devices.${device.name}.host` });
  // The control socket lives in a private directory: nobody else can ride our connection.
  const controlDir = await fs.mkdtemp(join(tmpdir(), 'sov-ssh-'));
  const base = sshArgs(device, root, join(controlDir, 'cm'));
  const label = `ssh ${device.user ? `${device.user}@` : ''}${device.host}:${device.port ?? 22}`;

  const ssh = async (remoteCommand: string, opts: { input?: string | Buffer | NodeJS.ReadableStream; timeoutMs?: number; signal?: AbortSignal; nothrow?: boolean }) => {
    const r = await exec('ssh', [...base, remoteCommand], { ...opts, env: deviceEnv('ssh'), nothrow: true });
    if (r.code === SSH_FAILED) {
      throw new UserError(`cannot reach device '${device.name}' (${label})`, {
        code: 'environment',
        details: tail(r.stderr),
        hint: `check that \`ssh${device.port ? ` -p ${device.port}` : ''} ${device.user ? `${device.user}@` : ''}${device.host} true\` works without a prompt (key in the agent or devices.${device.name}.identity) and that the host key is known`,
      });
    }
    if (r.code !== 0 && !opts.nothrow) throw new UserError(`command on ${label} failed (exit ${r.code})`, { details: tail(r.stderr || r.stdout) });
    return r;
  };

  /** Streams a local file into `remoteCommand`'s stdin, reporting bytes read. */
  const stream = async (file: string, remoteCommand: string, opts: UploadOptions) => {
    const total = (await fs.stat(file)).size;
    const input = createReadStream(file);
    let done = 0;
    input.on('data', (chunk) => { done += chunk.length; opts.progress?.(done, total); });
    try {
      await ssh(remoteCommand, { input, signal: opts.signal });
    } finally {
      input.destroy();
    }
  };

  return {
    kind: 'ssh',
    label,
    run(script: string, opts: TransportRunOptions = {}) {
      // argv holds only the fixed `sh -s`; the script and its input (secrets) travel on stdin.
      return ssh('sh -s', { input: stdinScript(script, opts.input), timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, signal: opts.signal, nothrow: opts.nothrow });
    },
    async upload(local: string, remote: string, opts: UploadOptions = {}) {
      if (!opts.sparse) return stream(local, `cat > ${shQuote(remote)}`, opts);
      const bundle = await sparseBundle(local, posix.basename(remote), opts.signal);
      try {
        await stream(bundle.path, `tar -xzof - -C ${shQuote(posix.dirname(remote))}`, opts);
      } finally {
        await bundle.cleanup();
      }
    },
    async close() {
      await exec('ssh', [...base.slice(0, -2), '-O', 'exit', ...base.slice(-2)], { env: deviceEnv('ssh'), nothrow: true, timeoutMs: 5000 }).catch(() => undefined);
      await fs.rm(controlDir, { recursive: true, force: true });
    },
  };
}

/** Client options, ending with `-- host`. Host-key policy comes from the device entry, never silently off. */
export function sshArgs(device: Device, root: string, controlPath: string): string[] {
  const o = (opt: string) => ['-o', opt];
  // ssh splits an -o value at spaces unless quoted, and expands %-tokens in every path it is given (an `-i` path too,
  // where no escape passes its own existence check): each path goes as a quoted -o value with %% for a literal %.
  const quoted = (p: string) => `"${p.replace(/%/g, '%%')}"`;
  const path = (p: string) => resolve(root, p.replace(/^~(?=\/|$)/, homedir()));
  return [
    '-T',
    ...o('BatchMode=yes'),
    ...o('ControlMaster=auto'),
    ...o(`ControlPath=${quoted(controlPath)}`),
    ...o('ControlPersist=300'),
    ...o('ConnectTimeout=10'),
    ...o('ServerAliveInterval=15'),
    ...o('LogLevel=ERROR'),
    ...(device.strictHostKeyChecking ? o(`StrictHostKeyChecking=${device.strictHostKeyChecking}`) : []),
    ...(device.knownHosts ? o(`UserKnownHostsFile=${quoted(path(device.knownHosts))}`) : []),
    ...(device.port ? ['-p', String(device.port)] : []),
    ...(device.identity ? [...o(`IdentityFile=${quoted(path(device.identity))}`), ...o('IdentitiesOnly=yes')] : []),
    ...(device.user ? ['-l', device.user] : []),
    '--',
    device.host!,
  ];
}
