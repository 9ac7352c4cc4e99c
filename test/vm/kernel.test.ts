// Kernel sources: a download is verified before anything is stored; paths are copied; shared kernels are aliases.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { resolveConfig } from '../../lib/config.ts';
import { UserError } from '../../lib/error.ts';
import type { PlanContext } from '../../lib/task.ts';
import { fetchKernel, kernelKeyInput, resolveImagePackage } from '../../lib/vm/kernel.ts';
import { kernel as kernelStep } from '../../tasks/kernel.ts';

const body = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
const good = createHash('sha256').update(body).digest('hex');
let server: Server;
let url = '';
let dir = '';

test.before(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), `kernel-${process.pid}-`));
  server = createServer((req, res) => {
    if (req.url !== '/vmlinuz') { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/vmlinuz`;
});
test.after(async () => {
  server.close();
  await fs.rm(dir, { recursive: true, force: true });
});

test('a download with the right sha256 is stored, with byte progress', async () => {
  const dest = join(dir, 'good', 'kernel');
  const seen: number[] = [];
  await fetchKernel({ url, sha256: good }, { root: dir, dest, progress: (d, t) => { seen.push(d); assert.is(t, body.length); } });
  assert.ok((await fs.readFile(dest)).equals(body));
  assert.is(seen[seen.length - 1], body.length);
  assert.ok(seen.length > 1);
});

test('a wrong sha256 stores nothing and says expected vs got', async () => {
  const dest = join(dir, 'bad', 'kernel');
  const wrong = 'a'.repeat(64);
  try {
    await fetchKernel({ url, sha256: wrong }, { root: dir, dest });
    assert.unreachable('mismatch accepted');
  } catch (e) {
    assert.instance(e, UserError);
    assert.match((e as Error).message, `expected sha256 ${wrong}`);
    assert.match((e as Error).message, `got ${good}`);
  }
  assert.equal(await fs.readdir(join(dir, 'bad')), [], 'no kernel and no temp file left');
});

test('an HTTP error is a UserError and stores nothing', async () => {
  const dest = join(dir, 'missing', 'kernel');
  try { await fetchKernel({ url: url.replace('vmlinuz', 'nope'), sha256: good }, { root: dir, dest }); assert.unreachable(); } catch (e) {
    assert.instance(e, UserError);
    assert.match((e as Error).message, /HTTP 404/);
  }
  assert.equal(await fs.readdir(join(dir, 'missing')), []);
});

test('{ path } copies a repo-relative or absolute file; its key is the content, never the path', async () => {
  await fs.writeFile(join(dir, 'Image'), 'kernel bytes');
  await fetchKernel({ path: 'Image' }, { root: dir, dest: join(dir, 'rel', 'kernel') });
  await fetchKernel({ path: join(dir, 'Image') }, { root: '/nonexistent', dest: join(dir, 'abs', 'kernel') });
  assert.is(await fs.readFile(join(dir, 'rel', 'kernel'), 'utf8'), 'kernel bytes');
  assert.is(await fs.readFile(join(dir, 'abs', 'kernel'), 'utf8'), 'kernel bytes');
  const key = JSON.stringify(await kernelKeyInput({ path: join(dir, 'Image') }, '/'));
  assert.not.match(key, dir);
  assert.match(key, createHash('sha256').update('kernel bytes').digest('hex'));
  try { await fetchKernel({ path: 'absent' }, { root: dir, dest: join(dir, 'x', 'kernel') }); assert.unreachable(); } catch (e) { assert.instance(e, UserError); }
});

test('a metapackage resolves to the linux-image package that ships the kernel', async () => {
  assert.match(await resolveImagePackage('linux-image-cloud-amd64'), /^linux-image-\d+\.\d+\.\d+-\d+-cloud-amd64$/);
  try { await resolveImagePackage('no-such-package-sovereign'); assert.unreachable(); } catch (e) { assert.instance(e, UserError); }
});

test('the kernel step: { from } is an alias of the owner task; key inputs hold no absolute path', async () => {
  const r = resolveConfig({
    services: {
      sql: { displayName: 'SQL', guestIp: '192.168.100.2', ports: [5432], readyMarker: 'up', kernel: { url, sha256: good } },
      forge: { displayName: 'Forge', guestIp: '192.168.100.3', ports: [443], readyMarker: 'up', kernel: { from: 'sql' } },
      box: { displayName: 'Box', guestIp: '192.168.100.4', ports: [80], readyMarker: 'up', kernel: { path: join(dir, 'Image') } },
    },
  }, 'test');
  if (!r.ok) throw r.error;
  const ctx = (svc: string): PlanContext => ({ service: r.value.services.get(svc)!, config: r.value, device: r.value.devices.get('local')! });
  assert.is(kernelStep.alias!(ctx('forge')), 'sql:kernel');
  assert.is(kernelStep.alias!(ctx('sql')), undefined);
  assert.equal(await kernelStep.inputs!(ctx('sql')), { config: { kernel: { sha256: good } } });
  assert.not.match(JSON.stringify(await kernelStep.inputs!(ctx('box'))), dir);
  assert.equal(kernelStep.outputs!(ctx('sql')), ['kernel', 'modules.tar']);
});

test.run();
