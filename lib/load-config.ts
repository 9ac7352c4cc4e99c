// Loads sovereign.config.ts fresh on every run: bundled with the files it imports, paths kept as written, validated at the edge.
import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Config, resolveConfig } from './config.ts';
import { UserError } from './error.ts';
import { sha256 } from './hash.ts';
import { writeFileAtomic } from './fsutil.ts';

export const CONFIG_FILE = 'sovereign.config.ts';
/** Where the bundled config is written: inside the repo, so `import 'sovereign'` resolves to this package. */
const COMPILED_DIR = join('.sovereign', 'config');

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
  const code = await bundle(file);
  // Named by content: an unchanged config is not rewritten, and a changed one never reuses Node's module cache.
  const dir = join(root, COMPILED_DIR);
  const compiled = join(dir, `${sha256(code).slice(0, 16)}.mjs`);
  let mod: { default?: unknown } | undefined;
  // A run loading another edit of the config removes this bundle when done with its own: write it again then.
  for (let attempt = 0; !mod; attempt++) {
    if (!(await fs.access(compiled).then(() => true, () => false))) await writeFileAtomic(compiled, code);
    try {
      mod = await import(pathToFileURL(compiled).href);
    } catch (e) {
      const gone = (e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && (e as Error).message.includes(compiled);
      if (!gone || attempt >= 2) throw new UserError(`${CONFIG_FILE} failed to load: ${(e as Error).message}`, { code: 'config' });
    }
  }
  await dropOthers(dir, compiled);
  const r = resolveConfig(await mod.default, CONFIG_FILE, root);
  if (!r.ok) throw r.error;
  return r.value;
}

/**
 * One ESM file holding the config and every relative file it imports (packages stay imports). Each bundled file
 * keeps its own `import.meta.url`, `__dirname` and `__filename`, so paths relative to it resolve as written.
 */
async function bundle(file: string): Promise<string> {
  const { build } = await import('esbuild');
  const out = await build({
    entryPoints: [file], bundle: true, write: false, format: 'esm', platform: 'node', target: 'node20',
    packages: 'external', logLevel: 'silent',
    define: { 'import.meta.url': '__sovereign_url', 'import.meta.dirname': '__sovereign_dirname', 'import.meta.filename': '__sovereign_filename', __dirname: '__sovereign_dirname', __filename: '__sovereign_filename' },
    plugins: [{
      name: 'own-paths',
      setup(b) {
        b.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
          const text = await fs.readFile(args.path, 'utf8');
          const own = `const __sovereign_url = ${JSON.stringify(pathToFileURL(args.path).href)}, __sovereign_dirname = ${JSON.stringify(dirname(args.path))}, __sovereign_filename = ${JSON.stringify(args.path)};`;
          return { contents: `${own}\n${text}`, loader: /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js' };
        });
      },
    }],
  }).catch((e: { errors?: { text: string; location?: { file: string; line: number; column: number } }[] }) => {
    const first = e.errors?.[0];
    // Line numbers count the one line prepended above.
    const at = first?.location ? `${first.location.file}:${first.location.line - 1}:${first.location.column}` : CONFIG_FILE;
    throw new UserError(`${at}: ${first?.text ?? String(e)}`, { code: 'config' });
  });
  return out.outputFiles[0].text;
}

/** One bundle at a time: those of earlier edits go once this one loaded. */
async function dropOthers(dir: string, keep: string): Promise<void> {
  for (const name of await fs.readdir(dir).catch(() => [])) {
    // Not ours to remove (a read-only checkout): harmless, they are only stale.
    if (name.endsWith('.mjs') && join(dir, name) !== keep) await fs.rm(join(dir, name), { force: true }).catch(() => {});
  }
}
