// The adb transport: `adb -s <serial>`, commands as root via `shell su -c`, files staged in /data/local/tmp.
import { promises as fs } from 'node:fs';
import { posix } from 'node:path';
import type { Device } from '../config.ts';
import { UserError } from '../error.ts';
import { exec, tail } from '../exec.ts';
import type { ExecOptions, ExecResult } from '../exec.ts';
import { deviceEnv } from './env.ts';
import { DEFAULT_TIMEOUT_MS, shQuote, stdinScript, TEMP_MARK } from './shell.ts';
import { sparseBundle } from './sparse.ts';
import type { Transport, TransportRunOptions, UploadOptions } from './transport.ts';

/** Where `adb push` may write as the shell user; files move into place as root from here. */
export const STAGING_DIR = '/data/local/tmp';
/** Cleanup commands get a short leash, as in the original. */
const CLEANUP_TIMEOUT_MS = 5000;
/** Unpacking a data disk on a phone can take a while. */
const UNPACK_TIMEOUT_MS = 10 * 60_000;
/** adb's own failures (as opposed to the remote command's) print one of these. */
const ADB_FAILURE = /no devices\/emulators found|device '[^']*' not found|device (unauthorized|offline|still authorizing)|more than one device|error: closed|protocol fault/;

const AUTH_HINT = 'unlock the phone, accept the "Allow USB debugging" prompt, then run `adb devices` (it should say "device")';

export async function adbTransport(device: Device): Promise<Transport> {
  const serial = device.serial ?? (await onlyAttachedDevice(device));
  await ensureReady(device, serial);
  const label = `adb -s ${serial}`;

  const adb = async (args: string[], opts: ExecOptions = {}): Promise<ExecResult> => {
    const r = await exec('adb', ['-s', serial, ...args], { ...opts, env: deviceEnv('adb'), nothrow: true });
    if (r.code !== 0 && ADB_FAILURE.test(r.stderr)) {
      throw new UserError(`device '${device.name}' (${label}) is not reachable: ${r.stderr.trim().split('\n')[0]}`, { code: 'environment', hint: AUTH_HINT });
    }
    if (r.code !== 0 && !opts.nothrow) throw new UserError(`adb ${args[0]} on ${label} failed (exit ${r.code})`, { details: tail(r.stderr || r.stdout) });
    return r;
  };

  // argv holds only the fixed `su -c 'sh -s'` (adb joins and re-parses it on the device, so nothing
  // variable is put there); the script and its input ride stdin.
  const run = (script: string, opts: TransportRunOptions = {}) =>
    adb(['shell', "su -c 'sh -s'"], { input: stdinScript(script, opts.input), timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, signal: opts.signal, nothrow: opts.nothrow });

  return {
    kind: 'adb',
    label,
    run,
    async upload(local: string, remote: string, opts: UploadOptions = {}) {
      // The original's staging name: the device path with / turned into _.
      const stage = posix.join(STAGING_DIR, remote.replace(/\//g, '_'));
      const bundle = opts.sparse ? await sparseBundle(local, posix.basename(remote), opts.signal) : undefined;
      const file = bundle?.path ?? local;
      const size = (await fs.stat(file)).size;
      // A killed run leaves its staged copy here (a full rootfs, say): those of earlier pushes of this same file go first.
      const mark = stage.indexOf(TEMP_MARK);
      if (mark > 0) await run(`rm -f ${shQuote(stage.slice(0, mark + TEMP_MARK.length))}*`, { timeoutMs: CLEANUP_TIMEOUT_MS, nothrow: true });
      try {
        await adb(['push', file, stage], { signal: opts.signal });
        const place = bundle
          ? `tar -xzof ${shQuote(stage)} -C ${shQuote(posix.dirname(remote))}; s=$?; rm -f ${shQuote(stage)}; exit $s`
          : `mv -f ${shQuote(stage)} ${shQuote(remote)}`;
        await run(place, { signal: opts.signal, timeoutMs: bundle ? UNPACK_TIMEOUT_MS : DEFAULT_TIMEOUT_MS });
        opts.progress?.(size, size);
      } catch (e) {
        await run(`rm -f ${shQuote(stage)}`, { timeoutMs: CLEANUP_TIMEOUT_MS, nothrow: true }).catch(() => undefined);
        throw e;
      } finally {
        await bundle?.cleanup();
      }
    },
    async close() {},
  };
}

/** With no serial configured, exactly one attached device is used; none or several is an error. */
async function onlyAttachedDevice(device: Device): Promise<string> {
  const r = await exec('adb', ['devices'], { env: deviceEnv('adb'), timeoutMs: 10_000 });
  const attached = r.stdout.split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 2 && f[0]);
  if (attached.length === 1) return attached[0][0];
  if (attached.length === 0) throw new UserError(`no adb device attached for device '${device.name}'`, { code: 'environment', hint: `connect the phone with USB debugging on; ${AUTH_HINT}` });
  throw new UserError(`several adb devices attached: ${attached.map((f) => `${f[0]} (${f[1]})`).join(', ')}`, {
    code: 'config',
    hint: `pick one: set devices.${device.name}.serial in sovereign.config.ts`,
  });
}

async function ensureReady(device: Device, serial: string): Promise<void> {
  const r = await exec('adb', ['-s', serial, 'get-state'], { env: deviceEnv('adb'), timeoutMs: 10_000, nothrow: true });
  const state = r.code === 0 ? r.stdout.trim() : (r.stderr.trim().split('\n')[0] || 'absent');
  if (state !== 'device') {
    throw new UserError(`adb device ${serial} (device '${device.name}') is not ready: ${state}`, { code: 'environment', hint: AUTH_HINT });
  }
}
