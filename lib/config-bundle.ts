// The config bundled into one ESM file, and the record that lets an unchanged config skip the bundler (starting
// esbuild is most of a small no-op run): the bundle is reused only while everything that could change it is as it was.
import { readdirSync, readFileSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UserError } from './error.ts';
import { sha256 } from './hash.ts';
import { writeFileAtomic } from './fsutil.ts';

/** Bump when the bundle options below change: bundles made with the old ones are not reused. */
const FORMAT = 'sovereign-config-bundle 1';
/** Files whose content changes how esbuild reads the config's sources, wherever they sit above them. */
const SETTINGS = ['tsconfig.json', 'jsconfig.json', 'package.json'];

/**
 * What a bundle depends on: every file it holds (by content), the listing of each folder holding one (a new file there
 * can change what an import resolves to), the settings files above them, and the bundler's version.
 */
interface Watched { format: string; files: string[]; dirs: string[]; fingerprint: string }

export interface Bundled { code: string; watched: Watched }

/**
 * One ESM file holding the config and every relative file it imports (packages stay imports). Each bundled file
 * keeps its own `import.meta.url`, `__dirname` and `__filename`, so paths relative to it resolve as written.
 */
export async function bundle(file: string): Promise<Bundled> {
  const { build } = await import('esbuild');
  const read = new Map<string, string>();
  const out = await build({
    entryPoints: [file], bundle: true, write: false, format: 'esm', platform: 'node', target: 'node20',
    packages: 'external', logLevel: 'silent', metafile: true,
    define: { 'import.meta.url': '__sovereign_url', 'import.meta.dirname': '__sovereign_dirname', 'import.meta.filename': '__sovereign_filename', __dirname: '__sovereign_dirname', __filename: '__sovereign_filename' },
    plugins: [{
      name: 'own-paths',
      setup(b) {
        b.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
          const text = await fs.readFile(args.path, 'utf8');
          read.set(args.path, text);
          const own = `const __sovereign_url = ${JSON.stringify(pathToFileURL(args.path).href)}, __sovereign_dirname = ${JSON.stringify(dirname(args.path))}, __sovereign_filename = ${JSON.stringify(args.path)};`;
          return { contents: `${own}\n${text}`, loader: /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js' };
        });
      },
    }],
  }).catch((e: { errors?: { text: string; location?: { file: string; line: number; column: number } }[] }) => {
    const first = e.errors?.[0];
    // Line numbers count the one line prepended above.
    const at = first?.location ? `${first.location.file}:${first.location.line - 1}:${first.location.column}` : basename(file);
    throw new UserError(`${at}: ${first?.text ?? String(e)}`, { code: 'config' });
  });
  const files = Object.keys(out.metafile!.inputs).map((p) => resolve(p)).sort();
  const dirs = [...new Set(files.map((f) => dirname(f)))].sort();
  const settings = new Set<string>();
  for (const d of dirs) for (let at = d; ; at = dirname(at)) { for (const s of SETTINGS) settings.add(join(at, s)); if (dirname(at) === at) break; }
  const all = [...files, ...[...settings].sort()];
  const fingerprint = fingerprintOf(all, dirs);
  // A source edited while it was bundled: the bundle holds the old text, so it must not be vouched for as the new.
  const stale = [...read].some(([path, text]) => contentHash(path) !== sha256(text));
  return { code: out.outputFiles[0].text, watched: { format: FORMAT, files: all, dirs, fingerprint: stale ? '' : fingerprint } };
}

/** Remembers which bundle stands for the config while what it was built from stays as it is. */
export async function saveBundleRecord(record: string, compiled: string, watched: Watched): Promise<void> {
  if (!watched.fingerprint) return;
  // The record only spares the next run the bundler: in a checkout this user may not write (another user's, a
  // read-only mount), the run goes on without it.
  await writeFileAtomic(record, JSON.stringify({ ...watched, compiled })).catch((e: NodeJS.ErrnoException) => {
    if (!['EACCES', 'EPERM', 'EROFS'].includes(e.code ?? '')) throw e;
  });
}

/** The bundle recorded for the config, when nothing it was built from has changed since; undefined: bundle again. */
export function cachedBundle(record: string): string | undefined {
  let w: Watched & { compiled: string };
  try { w = JSON.parse(readFileSync(record, 'utf8')); } catch { return undefined; }
  if (w.format !== FORMAT || !Array.isArray(w.files) || !Array.isArray(w.dirs) || !/^[0-9a-f]{16}\.mjs$/.test(String(w.compiled)) || !w.fingerprint) return undefined;
  return fingerprintOf(w.files, w.dirs) === w.fingerprint ? w.compiled : undefined;
}

function fingerprintOf(files: string[], dirs: string[]): string {
  const lines = [`esbuild ${esbuildVersion()}`];
  for (const f of files) lines.push(`f ${f} ${contentHash(f)}`);
  for (const d of dirs) lines.push(`d ${d} ${sha256(list(d).join('/'))}`);
  return sha256(lines.join('\n'));
}

function contentHash(file: string): string {
  try { return sha256(readFileSync(file)); } catch { return 'absent'; }
}

function list(dir: string): string[] {
  try { return readdirSync(dir).sort(); } catch { return []; }
}

let esbuildVersionMemo: string | undefined;
/** Read from its package.json: loading esbuild itself is what a cached bundle saves. */
function esbuildVersion(): string {
  return (esbuildVersionMemo ??= (JSON.parse(readFileSync(createRequire(import.meta.url).resolve('esbuild/package.json'), 'utf8')) as { version: string }).version);
}
