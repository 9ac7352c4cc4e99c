// A service `dir` that is the repo root (by name, or by a symlink to it or above it) is refused at load (exit 3): as a
// build context it would carry .env and .sovereign/.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../lib/config.ts';

const withDir = (dir: string, root?: string) => resolveConfig({ services: { sql: { displayName: 'PostgreSQL', guestIp: '192.168.100.2', ports: [5432], readyMarker: 'ready', kernel: { deb: 'linux-image-cloud-amd64' }, dir } } }, 'sovereign.config.ts', root);

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

test('a dir that is a symlink to the repo root, or above it, is refused; a link to a payload folder is fine', () => {
  const base = mkdtempSync(join(tmpdir(), 'sov-config-dir-'));
  try {
    const root = join(base, 'repo');
    mkdirSync(join(root, 'vm', 'payload'), { recursive: true });
    symlinkSync('..', join(root, 'vm', 'root')); // vm/root -> the repo root
    symlinkSync('../..', join(root, 'vm', 'above'));
    symlinkSync('payload', join(root, 'vm', 'sql'));
    for (const dir of ['vm/root', 'vm/above']) {
      const r = withDir(dir, root);
      assert.not.ok(r.ok, `dir '${dir}' accepted`);
      if (!r.ok) assert.match(JSON.stringify({ m: r.error.message, d: r.error.details }), /services\.sql\.dir[^]*repo root[^]*\.env/);
    }
    for (const dir of ['vm/sql', 'vm/payload']) {
      const r = withDir(dir, root);
      assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.error.details));
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test.run();
