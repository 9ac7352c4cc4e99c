// What a killed run leaves (temp copies of .env, outputs, records and blobs; upload/import staging; a kernel fetch
// folder) is removed by the next run; what another live process owns is kept.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { project } from '../support/engine.ts';
import { tmpName } from '../../lib/fsutil.ts';

test('a run sweeps the temp files a killed run left, and keeps a live process\'s kernel folder', async () => {
  const p = await project();
  try {
    await p.run(['a:gen']);
    const sov = join(p.root, '.sovereign');
    const leftovers = [
      tmpName(join(p.root, '.env')), // a full copy of the secrets
      tmpName(join(sov, 'out', 'a', 'gen.txt')),
      tmpName(join(sov, 'cache', 'records', `${'a'.repeat(64)}.json`)),
      tmpName(join(sov, 'cache', 'blobs', 'ab', 'a'.repeat(64))),
      join(sov, 'cache', 'tmp', 'upload-x1', 'artifact.gz'),
      join(sov, 'cache', 'tmp', 'import-x2', 'records', 'r.json'),
    ];
    for (const f of leftovers) { await fs.mkdir(join(f, '..'), { recursive: true }); await fs.writeFile(f, 'SECRET=1\n'); }
    const dead = join(tmpdir(), 'sovereign-kernel-999999999-abc');
    const live = join(tmpdir(), `sovereign-kernel-${process.pid}-abc`);
    for (const d of [dead, live]) await fs.mkdir(join(d, 'x'), { recursive: true });
    try {
      await fs.writeFile(join(p.root, 'inputs', 'a.txt'), 'changed\n');
      const r = await p.run(['a:gen']);
      assert.ok(r.ok);
      for (const f of leftovers) assert.not.ok(existsSync(f), `${f} swept`);
      assert.not.ok(existsSync(dead), 'a dead run\'s kernel folder is swept');
      assert.ok(existsSync(live), 'a live process\'s kernel folder is kept');
    } finally {
      await fs.rm(live, { recursive: true, force: true });
      await fs.rm(dead, { recursive: true, force: true });
    }
  } finally {
    await p.cleanup();
  }
});

test.run();
