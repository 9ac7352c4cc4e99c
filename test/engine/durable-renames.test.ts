// Power-cut safety, shown with strace on real writers: every rename that makes a file trusted (outputs, blobs, records,
// the stat cache, engine state, the generated .env) is preceded by an fsync of that file and followed by an fsync of
// its folder. (The device side, pushed files and the manifest: test/device/session-durable.test.ts.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { exec } from '../../lib/exec.ts';

interface Call { kind: 'fsync' | 'rename'; paths: string[] }

/** fsync(fd</path>) and rename*(…"old", …"new") calls in the order they started, from `strace -f -y`. */
function calls(trace: string): Call[] {
  const out: Call[] = [];
  for (const line of trace.split('\n')) {
    const fsync = /\b(?:fsync|fdatasync)\(\d+<([^>]*)>/.exec(line);
    if (fsync) { out.push({ kind: 'fsync', paths: [fsync[1]] }); continue; }
    if (/\brename(?:at2?)?\(/.test(line) && !/resumed>/.test(line)) out.push({ kind: 'rename', paths: [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]) });
  }
  return out;
}

/** Runs node with `args` under strace in `root`; the renames into `under`, each checked: fsync(file) before, fsync(folder) after. */
async function tracedRenames(root: string, args: string[], under: string): Promise<string[]> {
  const trace = join(root, 'strace.txt');
  const r = await exec('strace', ['-f', '-y', '-qq', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2', '-o', trace, process.execPath, '--import', 'tsx', ...args], { cwd: process.cwd(), nothrow: true });
  assert.is(r.code, 0, r.stderr);
  const all = calls(readFileSync(trace, 'utf8'));
  const renames = all.map((c, i) => ({ c, i })).filter(({ c }) => c.kind === 'rename' && c.paths.length >= 2 && c.paths.at(-1)!.startsWith(under));
  for (const { c, i } of renames) {
    const [from, to] = c.paths.slice(-2);
    const before = all.slice(0, i).some((x) => x.kind === 'fsync' && x.paths[0] === from);
    const after = all.slice(i + 1).some((x) => x.kind === 'fsync' && x.paths[0] === dirname(to));
    assert.ok(before, `fsync of ${from} before it is renamed to ${to}`);
    assert.ok(after, `fsync of ${dirname(to)} after ${to} got its name`);
  }
  return renames.map(({ c }) => c.paths.at(-1)!);
}

test('a run: outputs, blobs, records, stat cache and engine state each fsync(file), rename, fsync(folder)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sov-durable-'));
  try {
    await fs.mkdir(join(root, 'inputs'));
    await fs.writeFile(join(root, 'inputs', 'a.txt'), 'hello\n');
    const renamed = await tracedRenames(root, [join(process.cwd(), 'test/support/engine-child.ts'), root, 'a:pack'], `${root}/.sovereign/`);
    const trusted = ['/out/a/gen.txt', '/out/a/pack.txt', '/cache/records/', '/cache/blobs/', '/state/stat-cache.json', '/state/engine.json'];
    for (const t of trusted) assert.ok(renamed.some((to) => to.includes(t)), `a rename into ${t} was traced (renames: ${renamed.join(', ')})`);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('generated secrets: .env is fsynced before its rename and the repo folder after', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sov-durable-env-'));
  try {
    const script = `import { ensureSecrets } from ${JSON.stringify(join(process.cwd(), 'lib/secrets.ts'))};
      await ensureSecrets({ name: 'forge', secrets: ['FORGEJO_SECRET_KEY'] }, ${JSON.stringify(root)}, true);`;
    const renamed = await tracedRenames(root, ['--input-type=module', '-e', script], root);
    assert.ok(renamed.includes(join(root, '.env')), `a rename to .env was traced (renames: ${renamed.join(', ')})`);
    assert.match(readFileSync(join(root, '.env'), 'utf8'), /^FORGEJO_SECRET_KEY=\S{32}$/m);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

test.run();
