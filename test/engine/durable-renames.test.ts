// Power-cut safety, shown with strace on a real run: every rename that makes a file trusted (outputs, blobs, records,
// the stat cache, engine state) is preceded by an fsync of that file and followed by an fsync of its folder.
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

test('each trusted rename: fsync(file), rename, fsync(folder)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sov-durable-'));
  try {
    await fs.mkdir(join(root, 'inputs'));
    await fs.writeFile(join(root, 'inputs', 'a.txt'), 'hello\n');
    const trace = join(root, 'strace.txt');
    const r = await exec('strace', ['-f', '-y', '-qq', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2', '-o', trace,
      process.execPath, '--import', 'tsx', join(process.cwd(), 'test/support/engine-child.ts'), root, 'a:pack'], { nothrow: true });
    assert.is(r.code, 0, r.stderr);
    const all = calls(readFileSync(trace, 'utf8'));
    const renames = all.map((c, i) => ({ c, i })).filter(({ c }) => c.kind === 'rename' && c.paths.length >= 2 && c.paths[1].startsWith(`${root}/.sovereign/`));
    const trusted = ['/out/a/gen.txt', '/out/a/pack.txt', '/cache/records/', '/cache/blobs/', '/state/'];
    for (const t of trusted) assert.ok(renames.some(({ c }) => c.paths[1].includes(t)), `a rename into ${t} was traced`);
    for (const { c, i } of renames) {
      const [from, to] = c.paths.slice(-2);
      const before = all.slice(0, i).some((x) => x.kind === 'fsync' && x.paths[0] === from);
      const after = all.slice(i + 1).some((x) => x.kind === 'fsync' && x.paths[0] === dirname(to));
      assert.ok(before, `fsync of ${from} before it is renamed to ${to}`);
      assert.ok(after, `fsync of ${dirname(to)} after ${to} got its name`);
    }
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

test.run();
