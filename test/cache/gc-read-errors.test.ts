// `cache gc` never deletes a blob a record still references because reading the records failed: under a low fd limit
// it reads a few at a time (and keeps everything), and an unreadable record aborts it with nothing deleted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { promises as fs, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { bin, checkout } from '../support/cli.ts';
import { exec } from '../../lib/exec.ts';
import { outputHashOf } from '../../lib/store/record.ts';
import type { CacheRecord } from '../../lib/store/store.ts';

const root = checkout('sovereign-gc-fd-');
const cache = join(root, '.sovereign/cache');
test.after(() => rmSync(root, { recursive: true, force: true }));

const N = 1500;
const blobs = () => readdirSync(join(cache, 'blobs'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;

test.before(async () => {
  await fs.mkdir(join(cache, 'records'), { recursive: true });
  for (let i = 0; i < N; i++) {
    const content = `blob ${i}`;
    const sha = createHash('sha256').update(content).digest('hex');
    await fs.mkdir(join(cache, 'blobs', sha.slice(0, 2)), { recursive: true });
    await fs.writeFile(join(cache, 'blobs', sha.slice(0, 2), sha), content);
    const key = createHash('sha256').update(`key ${i}`).digest('hex');
    const files = [{ name: 'out.img', sha256: sha, size: content.length, mode: 0o644 }];
    const rec: CacheRecord = { schema: 1, key, task: `s${i}:rootfs`, files, outputHash: outputHashOf(files, undefined), durationMs: 1, tools: {}, createdAt: '2024-01-01T00:00:00.000Z' };
    await fs.writeFile(join(cache, 'records', `${key}.json`), JSON.stringify(rec));
  }
});

const gc = () => exec('prlimit', ['--nofile=128:128', process.execPath, bin, 'cache', 'gc', '--max-size', '1G', '--json'], { cwd: root, nothrow: true, env: { ...process.env, NO_COLOR: '1' } });

test(`${N} records under a 128 file-descriptor limit: every referenced blob survives`, async () => {
  const r = await gc();
  assert.is(r.code, 0, r.stderr);
  assert.is(JSON.parse(r.stdout).removedRecords, 0);
  assert.is(blobs(), N, 'no referenced blob deleted');
});

test('an unreadable record aborts gc (exit 4) and nothing is deleted', async () => {
  await fs.mkdir(join(cache, 'records', `${'e'.repeat(64)}.json`)); // EISDIR when read
  const r = await gc();
  assert.is(r.code, 4, r.stdout + r.stderr);
  assert.match(r.stderr, 'nothing was deleted');
  assert.is(blobs(), N);
  assert.is(readdirSync(join(cache, 'records')).length, N + 1);
});

test.run();
