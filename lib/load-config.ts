// Loads sovereign.config.ts fresh on every run: bundled with the files it imports, paths kept as written, validated at the edge.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Config, resolveConfig } from './config.ts';
import { UserError } from './error.ts';
import { sha256 } from './hash.ts';
import { exists, writeFileAtomic } from './fsutil.ts';
import { bundle, cachedBundle, saveBundleRecord } from './config-bundle.ts';

export const CONFIG_FILE = 'sovereign.config.ts';
/** Where the bundled config is written: inside the repo, so `import 'sovereign'` resolves to this package. */
const COMPILED_DIR = join('.sovereign', 'config');
/** Which bundle stands for the config while its sources are unchanged (see config-bundle.ts). */
const BUNDLE_RECORD = 'bundle.json';

/** Finds the repo root: the nearest folder upwards holding sovereign.config.ts. */
export async function findRoot(from: string): Promise<string | undefined> {
  let dir = from;
  for (;;) {
    if (await fs.access(join(dir, CONFIG_FILE)).then(() => true, () => false)) return dir;
    const up = join(dir, '..');
    if (up === dir) return undefined;
    dir = up;
  }
}

export async function loadConfig(root: string): Promise<Config> {
  const file = join(root, CONFIG_FILE);
  await fs.access(file).catch(() => {
    throw new UserError(`no ${CONFIG_FILE} in ${root}`, { code: 'config', hint: 'run sovereign from the repo that holds sovereign.config.ts' });
  });
  const dir = join(root, COMPILED_DIR);
  const record = join(dir, BUNDLE_RECORD);
  // Unchanged since the last run (sources, their folders, settings, bundler): that run's bundle, without bundling.
  const cached = cachedBundle(record);
  let compiled = cached && join(dir, cached);
  let mod: { default?: unknown } | undefined;
  // A run loading another edit of the config removes this bundle when done with its own: write it again then.
  for (let attempt = 0; !mod; attempt++) {
    if (!compiled || !(await exists(compiled))) {
      const { code, watched } = await bundle(file);
      // Named by content: an unchanged config is not rewritten, and a changed one never reuses Node's module cache.
      const name = `${sha256(code).slice(0, 16)}.mjs`;
      compiled = join(dir, name);
      if (!(await exists(compiled))) await writeFileAtomic(compiled, code);
      await saveBundleRecord(record, name, watched);
    }
    try {
      mod = await import(pathToFileURL(compiled).href);
    } catch (e) {
      const gone = (e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && (e as Error).message.includes(compiled);
      if (!gone || attempt >= 2) throw new UserError(`${CONFIG_FILE} failed to load: ${(e as Error).message}`, { code: 'config' });
      compiled = undefined;
    }
  }
  await dropOthers(dir, compiled!);
  const r = resolveConfig(await mod.default, CONFIG_FILE, root);
  if (!r.ok) throw r.error;
  return r.value;
}

/** One bundle at a time: those of earlier edits go once this one loaded. */
async function dropOthers(dir: string, keep: string): Promise<void> {
  for (const name of await fs.readdir(dir).catch(() => [])) {
    // Not ours to remove (a read-only checkout): harmless, they are only stale.
    if (name.endsWith('.mjs') && join(dir, name) !== keep) await fs.rm(join(dir, name), { force: true }).catch(() => {});
  }
}
