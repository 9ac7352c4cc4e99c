// The base image without a registry: debootstrap a Debian root, then import it into the builder.
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../exec.ts';
import { UserError } from '../error.ts';
import { importImage, type BuilderKind } from './builder.ts';

export interface BaseOptions {
  kind: BuilderKind;
  suite: string;
  /** debootstrap variant (default minbase). */
  variant?: string;
  include?: string[];
  tag: string;
  /** Temp space (~250 MB); a private folder is made inside it and removed afterwards. */
  workDir: string;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
}

/** Runs debootstrap with its default mirror (the machine's reach decides) and imports the result; resolves the image id. */
export async function buildBase(o: BaseOptions): Promise<string> {
  // debootstrap mknods devices and chroots into the target: an ordinary user cannot (fakechroot variants are not supported).
  if (process.getuid?.() !== 0) {
    throw new UserError(`building the ${o.suite} base image needs root (debootstrap chroots and creates device nodes)`, {
      code: 'environment',
      hint: 'run this once as root (e.g. `sudo npx sovereign run sql:base`), or in CI, which runs as root; the image is cached afterwards',
    });
  }
  const work = await fs.mkdtemp(join(o.workDir, 'base-'));
  const target = join(work, 'root');
  try {
    const args = [`--variant=${o.variant ?? 'minbase'}`];
    if (o.include?.length) args.push(`--include=${o.include.join(',')}`);
    await exec('debootstrap', [...args, o.suite, target], { signal: o.signal, onLine: (l) => o.onLine?.(l) });
    await unmountUnder(target);
    // Package lists and caches would only bloat every image built on top.
    for (const d of ['var/cache/apt/archives', 'var/lib/apt/lists']) await clearDir(join(target, d));
    return await importImage(o.kind, target, o.tag, o.signal);
  } finally {
    // debootstrap mounts proc/sys in the target; an aborted run can leave them, and rm must not descend into them.
    await unmountUnder(target);
    if (mountsUnder(target).length === 0) await fs.rm(work, { recursive: true, force: true });
  }
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => !!m && (m === dir || m.startsWith(`${dir}/`)));
}

async function unmountUnder(dir: string): Promise<void> {
  for (const m of mountsUnder(dir).sort().reverse()) await exec('umount', ['-l', m], { nothrow: true });
}

async function clearDir(dir: string): Promise<void> {
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    const p = join(dir, name);
    if ((await fs.lstat(p)).isFile() && (name.endsWith('.deb') || name.includes('_'))) await fs.rm(p);
  }
}
