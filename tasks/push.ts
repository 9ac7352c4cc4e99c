// The push steps: put one artifact (or the secrets file) into `<root>/vm/<svc>/` on the device, atomically, when it differs.
import { promises as fs } from 'node:fs';
import { posix } from 'node:path';
import { UserError } from '../lib/error.ts';
import { sparseIdentity } from '../lib/extents.ts';
import { renderSecretsFile, SECRETS_FILE } from '../lib/secrets.ts';
import type { RunContext, Step } from '../lib/task.ts';
import { deltaBasis, pushDelta } from '../lib/device/delta.ts';
import type { ManifestEntry } from '../lib/device/device.ts';
import { shQuote } from '../lib/device/shell.ts';
import { stopVm } from '../lib/vm/process.ts';
import { VM_FILES } from '../lib/vm/files.ts';

interface PushSpec {
  /** Step name, e.g. `push-rootfs`. */
  name: string;
  summary: string;
  /** File name on the device, and in the dependency's outputs. */
  file: string;
  /** The step (of the same service) whose output is pushed; none for secrets. */
  from?: string;
  /** Transfer only the data of a sparse file (the data disk). */
  sparse?: boolean;
  /**
   * The dependency's output hash is its recipe, not its bytes (user data): record the pushed file's own identity and size.
   * Its sparseIdentity, read only where it holds data: nothing compares it with a sha256sum (user data is never re-hashed).
   */
  hashOnPush?: boolean;
  /** What the device must hold and how to put it there; defaults to "the dependency's file, by manifest". */
  check?(ctx: RunContext, path: string): Promise<true | string>;
  /** Send only the blocks the device's old copy lacks (large files that change a little: rootfs.img). */
  delta?: boolean;
  /** Returns the bytes sent (and how, when there is something to say). */
  run?(ctx: RunContext, path: string): Promise<Pushed>;
}

interface Pushed { bytes: number; note?: string }

const depId = (ctx: { service: { name: string } }, step: string) => `${ctx.service.name}:${step}`;
const devicePath = async (ctx: RunContext, file: string) => posix.join((await ctx.session()).serviceDir(ctx.service.name), file);
const short = (sha: string | undefined) => (sha ? sha.slice(0, 12) : 'none');

/** The one push step: every variant differs only in its spec. */
function pushStep(spec: PushSpec): Step {
  return {
    name: spec.name,
    kind: 'effect',
    version: 1,
    summary: spec.summary,
    usesDevice: true,
    deps: (ctx) => (spec.from ? [depId(ctx, spec.from)] : []),
    async check(ctx) {
      const path = await devicePath(ctx, spec.file);
      return (spec.check ?? checkByManifest(spec))(ctx, path);
    },
    async run(ctx) {
      const path = await devicePath(ctx, spec.file);
      const { bytes, note } = await (spec.run ?? pushArtifact(spec))(ctx, path);
      // A running VM no longer runs what is deployed (new secrets, a new disk): `start` must restart it.
      if (bytes > 0) await (await ctx.session()).run(`rm -f ${shQuote(await devicePath(ctx, VM_FILES.deployed))}`);
      return { bytes, note };
    },
  };
}

/** Up to date when the manifest records the dependency's exact content and the file is there (re-hashed with --verify). */
function checkByManifest(spec: PushSpec) {
  return async (ctx: RunContext, path: string): Promise<true | string> => {
    const want = ctx.dep(depId(ctx, spec.from!)).files[spec.file];
    if (!want) throw new Error(`${spec.from} has no output named ${spec.file}`);
    const dev = await ctx.session();
    const have = (await dev.manifest(ctx.service.name)).files[spec.file];
    if (!have) return `${spec.file} was never pushed`;
    // A delta builds on the device's file: the plan looks whether it is there (and with --verify, what it holds).
    const basis = () => deltaBasis(ctx.root, have, { session: dev, remote: path, verify: ctx.flags.verify });
    if (have.replacing) return `an earlier push of ${spec.file} was interrupted${spec.delta ? `; ${await basis()}` : ''}`;
    if (have.sha256 !== want.sha256 || have.size !== want.size) {
      const changed = `${spec.file} changed (device ${short(have.sha256)}, local ${short(want.sha256)})`;
      return spec.delta ? `${changed}; ${await basis()}` : changed;
    }
    if (!(await dev.exists(path))) return `${spec.file} is missing on the device`;
    if (ctx.flags.verify) {
      const actual = await dev.sha256(path);
      if (actual !== want.sha256) return `${spec.file} on the device hashes to ${short(actual)}, not ${short(want.sha256)} (--verify)`;
    }
    return true;
  };
}

/** Uploads the dependency's file atomically and records it in the device manifest. */
function pushArtifact(spec: PushSpec) {
  return async (ctx: RunContext, path: string): Promise<Pushed> => {
    const out = ctx.dep(depId(ctx, spec.from!)).files[spec.file];
    const pushed = spec.hashOnPush ? await identity(ctx, out.path, spec.file) : out;
    const dev = await ctx.session();
    const opts = { signal: ctx.signal, sparse: spec.sparse, progress: (done: number, total: number) => ctx.progress(done, total, spec.file) };
    const had = (await dev.manifest(ctx.service.name)).files[spec.file];
    // Before the new file's rename: a run killed after it must not find the manifest vouching for the old bytes.
    if (had && !had.replacing) await dev.recordPush(ctx.service.name, spec.file, { ...had, replacing: true });
    // The device's copy is only a base for a delta when it is a different file (not the same one gone missing).
    const have = spec.delta && had && had.sha256 !== pushed.sha256 ? had : undefined;
    const { bytes, note } = spec.delta
      ? await pushDelta(dev, { ...opts, root: ctx.root, local: out.path, remote: path, want: pushed, have })
      : { ...(await dev.push(out.path, path, opts)), note: undefined };
    await dev.recordPush(ctx.service.name, spec.file, pushed);
    ctx.log(`pushed ${spec.file} (${bytes} bytes sent${note ? `; ${note}` : ''})`);
    return { bytes, note };
  };
}

/** Identity and size of a data disk (with progress; the cost is its data, not its GiBs of holes). */
async function identity(ctx: RunContext, path: string, label: string): Promise<ManifestEntry> {
  const sha256 = await sparseIdentity(path, (done, size) => ctx.progress(done, size, `hashing ${label}`));
  return { sha256, size: (await fs.stat(path)).size, identity: 'sparse-v1' };
}

export const pushRootfs = pushStep({ name: 'push-rootfs', summary: 'rootfs.img on the device (only the blocks it lacks)', file: VM_FILES.rootfs, from: 'rootfs', delta: true });
export const pushKernel = pushStep({ name: 'push-kernel', summary: 'kernel on the device (only the blocks it lacks)', file: VM_FILES.kernel, from: 'kernel', delta: true });
export const pushStartScript = pushStep({ name: 'push-start-script', summary: 'start.sh on the device', file: VM_FILES.script, from: 'start-script' });

/** data.img is user data: pushed when the device has none, replaced only with --fresh-data and a confirmation. */
const dataDisk: PushSpec = {
  name: 'push-data-disk',
  summary: 'data.img on the device (only if absent; --fresh-data replaces it)',
  file: VM_FILES.data,
  from: 'data-disk',
  sparse: true,
  hashOnPush: true,
  async check(ctx, path) {
    if (!(await (await ctx.session()).exists(path))) return 'data.img is not on the device yet';
    return ctx.flags.freshData ? '--fresh-data: replace data.img on the device' : true;
  },
  async run(ctx, path) {
    // Guard here too, not only in check: --force skips checks, and must never cost user data.
    if (await (await ctx.session()).exists(path)) {
      if (!ctx.flags.freshData) {
        ctx.log('keeping the existing data.img on the device (use --fresh-data to replace it)');
        return { bytes: 0 };
      }
      const question = `Replace data.img of ${ctx.service.displayName} on the device? Everything stored in it is lost.`;
      if (!(await ctx.confirm(question))) throw new UserError(`data.img of ${ctx.service.name} was not replaced (not confirmed)`, { hint: 'answer yes, or pass --yes with --fresh-data' });
      // Never swap the disk under a running VM: it would go on writing into the old, unlinked file.
      const stopped = await stopVm(await ctx.session(), ctx.service.name, { signal: ctx.signal });
      if (stopped.state !== 'not running') ctx.log(`stopped the VM (pid ${stopped.pid}) to replace its data disk`);
    }
    return pushArtifact(dataDisk)(ctx, path);
  },
};
export const pushDataDisk = pushStep(dataDisk);

/** The declared `.env` keys as a 0600 file. Compared by content in memory: no hash of a secret is stored anywhere. */
export const pushSecrets = pushStep({
  name: 'push-secrets',
  summary: `${SECRETS_FILE} (the service's declared .env keys, mode 0600) on the device`,
  file: SECRETS_FILE,
  async check(ctx, path) {
    const dev = await ctx.session();
    const have = await dev.readFile(path);
    if (!have) return `${SECRETS_FILE} is not on the device`;
    if (!have.equals(renderSecretsFile(await ctx.secrets()))) return `${SECRETS_FILE} differs from .env`;
    const mode = await dev.mode(path);
    return mode === 0o600 ? true : `${SECRETS_FILE} has mode ${mode?.toString(8)}, not 600`;
  },
  async run(ctx, path) {
    const content = renderSecretsFile(await ctx.secrets({ generate: true }));
    await (await ctx.session()).writeFile(path, content, 0o600);
    ctx.progress(content.length, content.length, SECRETS_FILE);
    return { bytes: content.length };
  },
});
