// Loads sovereign.config.ts fresh on every run: transpiled once per content (cached by hash), validated at the edge.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Config, resolveConfig } from './config.ts';
import { UserError } from './error.ts';
import { sha256 } from './hash.ts';
import { writeFileAtomic } from './fsutil.ts';

export const CONFIG_FILE = 'sovereign.config.ts';

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
  const source = await fs.readFile(file, 'utf8').catch(() => {
    throw new UserError(`no ${CONFIG_FILE} in ${root}`, { code: 'config', hint: 'run sovereign from the repo that holds sovereign.config.ts' });
  });
  // Transpiled output lives inside the repo so `import 'sovereign'` resolves to this package.
  const compiled = join(root, '.sovereign', 'config', `${sha256(source).slice(0, 16)}.mjs`);
  if (!(await fs.access(compiled).then(() => true, () => false))) {
    const { transform } = await import('esbuild');
    const out = await transform(source, { loader: 'ts', format: 'esm', sourcefile: file, target: 'node20' }).catch((e: { errors?: { text: string; location?: { line: number; column: number } }[] }) => {
      const first = e.errors?.[0];
      throw new UserError(`${CONFIG_FILE}${first?.location ? `:${first.location.line}:${first.location.column}` : ''}: ${first?.text ?? String(e)}`, { code: 'config' });
    });
    await writeFileAtomic(compiled, out.code);
  }
  let mod: { default?: unknown };
  try {
    mod = await import(pathToFileURL(compiled).href);
  } catch (e) {
    throw new UserError(`${CONFIG_FILE} failed to load: ${(e as Error).message}`, { code: 'config' });
  }
  const r = resolveConfig(mod.default, CONFIG_FILE);
  if (!r.ok) throw r.error;
  return r.value;
}
