// A service `dir` that is the repo root is refused at load (exit 3): as a build context it would carry .env and .sovereign/.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveConfig } from '../lib/config.ts';

const withDir = (dir: string) => resolveConfig({ services: { sql: { displayName: 'PostgreSQL', guestIp: '192.168.100.2', ports: [5432], readyMarker: 'ready', kernel: { deb: 'linux-image-cloud-amd64' }, dir } } }, 'sovereign.config.ts');

for (const dir of ['.', './', '', './.']) {
  test(`dir: '${dir}' is refused with exit 3, naming the field and why`, () => {
    const r = withDir(dir);
    if (dir === '') { assert.not.ok(r.ok && r.value.services.get('sql')?.dir === '', "'' never means the repo root"); return; }
    assert.not.ok(r.ok, `dir '${dir}' accepted`);
    if (r.ok) return;
    assert.is(r.error.code, 'config');
    assert.match(JSON.stringify({ m: r.error.message, d: r.error.details }), /services\.sql\.dir[^]*\.env/);
  });
}

test("dir: 'vm/sql' is fine", () => {
  const r = withDir('vm/sql');
  assert.ok(r.ok, r.ok ? '' : r.error.message + JSON.stringify(r.error.details));
});

test.run();
