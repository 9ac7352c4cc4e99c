// The HTTP status check `test --forge/--vault` runs on the device: real curl and busybox wget against a loopback server.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../../lib/exec.ts';
import { httpStatusScript, resolveChecks } from '../../lib/vm/checks.ts';

let server: Server;
let base = '';
// A device without curl: only busybox's applets on PATH.
const bare = mkdtempSync(join(tmpdir(), 'sov-bare-'));
for (const a of ['sh', 'wget', 'sed', 'head', 'timeout']) symlinkSync('/bin/busybox', join(bare, a));

test.before(async () => {
  // / redirects to the login page as Forgejo does for some setups; /alive answers 200; /broken fails.
  server = createServer((req, res) => {
    const status = req.url === '/' ? 303 : req.url === '/alive' ? 200 : 500;
    res.writeHead(status, { location: '/user/login', 'content-length': '0' }).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
test.after(() => { server.close(); rmSync(bare, { recursive: true, force: true }); });

const status = async (path: string, env?: NodeJS.ProcessEnv) => (await exec('sh', ['-c', httpStatusScript(`${base}${path}`)], { env, nothrow: true })).stdout.trim();

test('with curl: the first status, redirects not followed', async () => {
  assert.is(await status('/'), '303');
  assert.is(await status('/alive'), '200');
  assert.is(await status('/broken'), '500');
});

test('with busybox wget only (a device without curl): the same statuses', async () => {
  const env = { PATH: bare };
  assert.is(await status('/', env), '303');
  assert.is(await status('/alive', env), '200');
  assert.is(await status('/broken', env), '500');
});

test('config: the http port must be a service port; postgres needs service, user and password key', () => {
  const issues: string[] = [];
  const bad = (f: string, p: string) => issues.push(`${f}: ${p}`);
  const ok = resolveChecks('services.vault.checks', { http: { port: 443, path: '/alive' } }, [443], bad);
  assert.equal(ok.http, { port: 443, path: '/alive', tls: true, expect: [200, 302, 303] });
  resolveChecks('services.vault.checks', { http: { port: 80 }, postgres: { service: 'sql' } }, [443], bad);
  assert.equal(issues, [
    'services.vault.checks.http.port: 80 is not among the service\'s ports',
    'services.vault.checks.postgres: needs service, user and passwordSecret',
  ]);
});

test.run();
