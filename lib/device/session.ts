// The device session: atomic pushes, small files, the push manifest and detached processes, built once on any Transport.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { posix, resolve } from 'node:path';
import type { Device } from '../config.ts';
import { UserError } from '../error.ts';
import { tail } from '../exec.ts';
import type { DeviceSession, Manifest, ManifestEntry } from './device.ts';
import { openTransport } from './open.ts';
import { shQuote as q, TEMP_MARK } from './shell.ts';
import type { Transport, TransportRunOptions, UploadOptions } from './transport.ts';

/** Exit code our scripts use for "no such file", so it is not confused with a failure. */
const ABSENT = 66;
/** Hashing a disk image on a phone is slow; don't cut it off at the default 30 s. */
const HASH_TIMEOUT_MS = 10 * 60_000;
/** How long spawnDetached waits for the detached process to write its pid. */
const PID_WAIT_TICKS = 100;

/** Opens the device's transport and a session on it. `root` is the repo root. */
export async function openSession(device: Device, root: string): Promise<DeviceSession> {
  const transport = await openTransport(device, root);
  // A local device root is a folder of the repo; every other device root is absolute on the device.
  return createSession(transport, device, device.transport === 'local' ? resolve(root, device.root) : device.root);
}

/** A session over an already open transport; `deviceRoot` is the absolute device path holding `vm/<svc>/`. */
export function createSession(transport: Transport, device: Device, deviceRoot: string): DeviceSession {
  // Promises, so a check and a push of one service asking at once share one read (a late read never overwrites a push).
  const manifests = new Map<string, Promise<Manifest>>();
  let onDevice: Promise<Map<string, Buffer>> | undefined;
  const run = (script: string, opts?: TransportRunOptions) => transport.run(script, opts);
  const serviceDir = (svc: string) => posix.join(deviceRoot, 'vm', svc);
  const manifestPath = (svc: string) => posix.join(serviceDir(svc), 'manifest.json');

  /** Runs a script whose exit code ABSENT means "no such file" (-> undefined); other failures throw. */
  const query = async (script: string, timeoutMs?: number): Promise<string | undefined> => {
    const r = await run(script, { nothrow: true, timeoutMs });
    if (r.code === ABSENT) return undefined;
    // Never stdout in the error: for a read it is the file (secrets.env).
    if (r.code !== 0) throw new UserError(`device command failed on ${transport.label} (exit ${r.code})`, { details: tail(r.stderr) });
    return r.stdout;
  };

  const writeFile = async (remote: string, data: string | Buffer, mode: number) => {
    const tmp = tempName(remote);
    // umask 077: the temp file is private from its first byte; the final mode is set before the rename.
    // The length check: a sovereign killed mid-write closes the pipe, and `cat` takes the short input for the whole.
    await run(
      `mkdir -p -m 700 ${q(posix.dirname(remote))} && umask 077 && cat > ${q(tmp)} && [ $(($(wc -c < ${q(tmp)}))) -eq ${Buffer.byteLength(data)} ] && chmod ${mode.toString(8)} ${q(tmp)} && ${durableMv(tmp, remote)} || { rm -f ${q(tmp)}; exit 1; }`,
      { input: data },
    );
  };

  const readFile = async (remote: string) => {
    const out = await query(`[ -f ${q(remote)} ] || exit ${ABSENT}; base64 < ${q(remote)}`);
    return out === undefined ? undefined : Buffer.from(out, 'base64');
  };

  const session: DeviceSession = {
    device,
    transport,
    serviceDir,
    run,

    async push(local: string, remote: string, opts: UploadOptions = {}) {
      const { mode } = await fs.stat(local);
      const dir = posix.dirname(remote);
      const tmp = tempName(remote);
      // Temp files of earlier, interrupted pushes of this file are debris: clear them first.
      // Service folders hold disks and secrets: private to the device's admin.
      await run(`mkdir -p -m 700 ${q(dir)} && rm -f ${tempGlob(remote)}`, { signal: opts.signal });
      let bytes = 0;
      try {
        await transport.upload(local, tmp, { ...opts, progress: (done, total) => { bytes = done; opts.progress?.(done, total); } });
        // The rename is the commit point: before it the old file is untouched, after it the new one is whole.
        await run(`chmod ${(mode & 0o777).toString(8)} ${q(tmp)} && ${durableMv(tmp, remote)}`, { signal: opts.signal });
      } catch (e) {
        await run(`rm -f ${q(tmp)}`, { nothrow: true, timeoutMs: 5000 }).catch(() => undefined);
        throw e;
      }
      return { bytes };
    },

    writeFile,
    readFile,

    async readFrom(remote: string, offset: number) {
      const out = await query(`[ -f ${q(remote)} ] || exit ${ABSENT}; tail -c +${Math.max(0, Math.floor(offset)) + 1} ${q(remote)} | base64`);
      return out === undefined ? Buffer.alloc(0) : Buffer.from(out, 'base64');
    },

    async sha256(remote: string) {
      const out = await query(`[ -f ${q(remote)} ] || exit ${ABSENT}; sha256sum < ${q(remote)}`, HASH_TIMEOUT_MS);
      return out === undefined ? undefined : /^[0-9a-f]{64}/.exec(out)?.[0];
    },

    async exists(remote: string) {
      return (await query(`[ -e ${q(remote)} ] || exit ${ABSENT}`)) !== undefined;
    },

    async mode(remote: string) {
      const out = await query(`[ -e ${q(remote)} ] || exit ${ABSENT}; stat -c %a ${q(remote)}`);
      return out === undefined ? undefined : parseInt(out.trim(), 8);
    },

    manifest(svc: string) {
      let m = manifests.get(svc);
      if (!m) {
        // Every service's manifest in one device command, on the first ask: a deploy of 5,000 services checks them all.
        const all = (onDevice ??= query(readAllManifests(posix.join(deviceRoot, 'vm'))).then((out) => parseManifests(out ?? '')));
        m = all.then((found) => parseManifest(found.get(svc)), (e: unknown) => {
          // A failed read is not remembered: the next ask tries again.
          if (onDevice === all) onDevice = undefined;
          manifests.delete(svc);
          throw e;
        });
        manifests.set(svc, m);
      }
      return m;
    },

    async recordPush(svc: string, name: string, entry: ManifestEntry) {
      const m = await session.manifest(svc);
      const next: Manifest = { ...m, files: { ...m.files, [name]: { sha256: entry.sha256, size: entry.size, ...(entry.identity && { identity: entry.identity }), ...(entry.replacing && { replacing: true }) } } };
      await writeFile(manifestPath(svc), `${JSON.stringify(next, null, 2)}\n`, 0o644);
      manifests.set(svc, Promise.resolve(next));
    },

    forgetPushes(svc: string) {
      manifests.set(svc, Promise.resolve(parseManifest(undefined)));
    },

    async spawnDetached(script: string, opts: { cwd: string; log: string; pidFile: string }) {
      const pidFile = q(opts.pidFile);
      const out = await query([
        `cd ${q(opts.cwd)} || exit 1`,
        detachScript(script, opts),
        `i=0; while [ ! -s ${pidFile} ] && [ $i -lt ${PID_WAIT_TICKS} ]; do sleep 0.05; i=$((i+1)); done`,
        `cat ${pidFile}`,
      ].join('\n'));
      const pid = Number.parseInt(out ?? '', 10);
      if (!Number.isInteger(pid) || pid <= 0) throw new UserError(`could not start a detached process on ${transport.label} (no pid in ${opts.pidFile})`, { details: tail(out ?? '') });
      return pid;
    },

    async isAlive(pid: number) {
      // A zombie answers kill -0 too; it is dead for our purposes.
      const r = await run(`kill -0 ${pid} 2>/dev/null || exit 1; s=$(sed 's/.*) //' /proc/${pid}/stat 2>/dev/null | cut -c1); [ "$s" != Z ]`, { nothrow: true });
      return r.code === 0;
    },

    close: () => transport.close(),
  };
  return session;
}

/**
 * Shell that starts `script` detached, from the current directory: setsid + every fd redirected, so nothing
 * ties the process to the adb/ssh channel (or the boot script) and it outlives it. The child writes its own
 * pid (then execs the script), so the pid is right whatever setsid does about forking. Also used by boot.sh.
 */
export function detachScript(script: string, opts: { log: string; pidFile: string }): string {
  const pidFile = q(opts.pidFile);
  return [
    `rm -f ${pidFile}`,
    `if command -v setsid >/dev/null 2>&1; then detach=setsid; else detach=nohup; fi`,
    `$detach sh -c 'echo $$ > "$1"; exec sh -c "$2"' sovereign ${pidFile} ${q(script)} </dev/null >>${q(opts.log)} 2>&1 &`,
  ].join('\n');
}

/** Hidden, unique, and in the target's own directory, so the final rename stays on one filesystem. */
export function tempName(remote: string): string {
  return posix.join(posix.dirname(remote), `.${posix.basename(remote)}${TEMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Shell glob (quoted prefix) matching every temp file of `remote`: debris of interrupted pushes, removed before the next. */
export function tempGlob(remote: string): string {
  return `${q(posix.join(posix.dirname(remote), `.${posix.basename(remote)}${TEMP_MARK}`))}*`;
}

/** The line between readAllManifests's sizes and its bytes (wc never prints a line of its own that is a lone dot). */
const MANIFEST_BYTES = '.';

/**
 * Shell printing the size of every `<vmDir>/<svc>/manifest.json` (one `wc -c`), a MANIFEST_BYTES line, then all of
 * them in the same order in base64 (one `cat | base64`): three processes for any number of services, where a loop
 * forked one per service (seconds at thousands), and exact bytes however damaged a manifest is.
 */
function readAllManifests(vmDir: string): string {
  return `cd ${q(vmDir)} 2>/dev/null || exit 0
set -- */manifest.json
case $1 in '*/manifest.json') [ -e "$1" ] || exit 0 ;; esac
wc -c -- "$@" 2>/dev/null
echo '${MANIFEST_BYTES}'
cat -- "$@" 2>/dev/null | base64 || exit 1`;
}

/** Service name -> manifest bytes, from readAllManifests's output. */
export function parseManifests(out: string): Map<string, Buffer> {
  const all = new Map<string, Buffer>();
  const lines = out.split('\n');
  const end = lines.indexOf(MANIFEST_BYTES);
  if (end < 0) return all; // nothing on the device
  const sizes: [string, number][] = [];
  for (const line of lines.slice(0, end)) {
    // Every count but wc's `total` is a file cat printed, in order, even one whose name wc printed oddly (a control
    // character): its bytes are skipped, never misplaced. A folder or a dangling link by that name prints no bytes
    // and is counted as 0 or not at all by both: nothing there stops the other services' reads.
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (!m || m[2] === 'total') continue;
    sizes.push([m[2].endsWith('/manifest.json') ? m[2].slice(0, -'/manifest.json'.length) : '', Number(m[1])]);
  }
  const bytes = Buffer.from(lines.slice(end + 1).join(''), 'base64');
  const expected = sizes.reduce((n, [, size]) => n + size, 0);
  if (bytes.length !== expected) {
    throw new UserError(`the device's push manifests changed while they were read (${bytes.length} bytes, ${expected} expected)`, {
      hint: 'is another sovereign deploying to this device? Run again once it is done',
    });
  }
  let at = 0;
  for (const [name, size] of sizes) {
    const part = bytes.subarray(at, (at += size));
    if (name) all.set(name, part);
  }
  return all;
}

/** A missing or unreadable manifest means "nothing known pushed": pushes then run and rewrite it. */
function parseManifest(raw: Buffer | undefined): Manifest {
  if (!raw) return { files: {} };
  try {
    const m = JSON.parse(raw.toString('utf8')) as Manifest;
    if (typeof m === 'object' && m && typeof m.files === 'object' && m.files) return m;
  } catch { /* fall through */ }
  return { files: {} };
}

/**
 * `mv` made durable: the file is synced before its rename and the folder after, so a power cut never leaves a name
 * (which the manifest vouches for) on a short or zero-filled file. `sync FILE` where the device's sync takes one, else a full sync.
 */
function durableMv(tmp: string, dest: string): string {
  const sync = (p: string) => `{ sync ${q(p)} 2>/dev/null || sync; }`;
  return `${sync(tmp)} && mv -f ${q(tmp)} ${q(dest)} && ${sync(posix.dirname(dest))}`;
}
