// End to end through the real CLI: a kernel `{ url, sha256 }` served on loopback is downloaded once for two
// services that share it, and a wrong checksum stores nothing and says expected vs got.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { KERNEL_BYTES, outcomes, ran, tinyProject, type RunSummary, type TinyProject } from '../support/tiny-project.ts';

let dockerd: Dockerd;
let server: Server;
let url: string;
const requests: string[] = [];
const projects: TinyProject[] = [];
const KERNEL_SHA = createHash('sha256').update(KERNEL_BYTES).digest('hex');
const show = (s: RunSummary) => s.tasks.map((t) => `${t.task}=${t.outcome}${t.reason ? ` (${t.reason})` : ''}`).join('\n');

test.before(async () => {
  dockerd = await startDockerd();
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': KERNEL_BYTES.length });
    res.end(KERNEL_BYTES);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/vmlinuz`;
});
test.after(async () => {
  for (const p of projects) p.cleanup();
  await new Promise((r) => server?.close(r));
  await dockerd?.stop();
});

/** Every file under `dir` (recursively), as paths relative to it. */
function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1));
}

test('6a. sql:build forge:build downloads the shared kernel once', async () => {
  const p = tinyProject('kernel', dockerd.host, { kernel: `{ url: '${url}', sha256: '${KERNEL_SHA}' }` });
  projects.push(p);
  requests.length = 0;
  const t = Date.now();
  const { code, summary, stderr } = await p.runJson(['run', 'sql:build', 'forge:build']);
  console.log(`  sql:build forge:build: ${((Date.now() - t) / 1000).toFixed(1)}s`);
  assert.is(code, 0, stderr);
  assert.equal(requests, ['/vmlinuz'], 'one HTTP request for the kernel');
  assert.ok(ran(summary).includes('sql:kernel'), show(summary));
  assert.is(summary.tasks.filter((t) => t.task === 'sql:kernel').length, 1, show(summary));
  assert.is(outcomes(summary)['forge:kernel'], 'fresh', show(summary));
  const kernel = join(p.root, '.sovereign', 'out', 'sql', 'kernel');
  assert.is(createHash('sha256').update(readFileSync(kernel)).digest('hex'), KERNEL_SHA);
  assert.is(p.dockerBuilds().length, 2, 'both images built');

  const again = await p.runJson(['run', 'sql:build', 'forge:build']);
  assert.is(again.code, 0, again.stderr);
  assert.equal(requests, ['/vmlinuz'], 'no second download');
});

test('6b. a wrong sha256 stores nothing and the error shows expected and got', async () => {
  const wrong = 'f'.repeat(64);
  const p = tinyProject('badkernel', dockerd.host, { kernel: `{ url: '${url}', sha256: '${wrong}' }` });
  projects.push(p);
  requests.length = 0;
  const r = await p.run(['run', 'sql:kernel']);
  const said = r.stdout + r.stderr;
  assert.is(r.code, 1, said);
  assert.equal(requests, ['/vmlinuz'], 'it did download');
  assert.match(said, `expected sha256 ${wrong}`);
  assert.match(said, `got ${KERNEL_SHA}`);
  // Nothing stored: no output, no cache record or blob, no temp file left.
  const sov = join(p.root, '.sovereign');
  assert.not.ok(existsSync(join(sov, 'out', 'sql', 'kernel')), 'no kernel in .sovereign/out');
  assert.equal(files(join(sov, 'cache')), [], 'the cache holds nothing');
  assert.equal(files(join(sov, 'tmp')), [], 'no temp file left');
  const ls = await p.run(['cache', 'ls', '--json']);
  assert.equal(JSON.parse(ls.stdout), []);
  // Nothing anywhere in .sovereign/ has the kernel's size (no stray copy under another name).
  for (const f of files(sov)) assert.is.not(statSync(join(sov, f)).size, KERNEL_BYTES.length, `stray copy: ${f}`);
});

test.run();
