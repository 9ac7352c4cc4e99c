// hashFile on a sparse file: the sha256 of all its bytes (as sha256sum says), read only where it holds data.
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exec } from '../../lib/exec.ts';
import { dataExtents } from '../../lib/extents.ts';
import { hashFile } from '../../lib/hash.ts';

let dir: string;
test.before(async () => { dir = await fs.mkdtemp(join(tmpdir(), 'sov-sparse-hash-')); });
test.after(async () => { if (dir) await fs.rm(dir, { recursive: true, force: true }); });

/** Bytes this process has read through read(2) so far (holes included: the kernel copies their zeros too). */
const bytesRead = () => Number(/^rchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);

test('a 256 MiB sparse file with data at both ends and in the middle: sha256sum\'s answer, reading only the data', async () => {
  const file = join(dir, 'data.img');
  const size = 256 << 20;
  const fh = await fs.open(file, 'w');
  await fh.truncate(size);
  for (const at of [0, (100 << 20) + 5, size - 1000]) await fh.write(randomBytes(1000), 0, 1000, at);
  await fh.close();

  const extents = await dataExtents(file, size);
  assert.ok(extents && extents.length >= 3, `extent map of ${file}: ${JSON.stringify(extents)}`);
  assert.ok(extents.every(([s, e]) => s < e && e <= size));

  const want = (await exec('sha256sum', [file])).stdout.slice(0, 64);
  const before = bytesRead();
  const progress: number[] = [];
  assert.is(await hashFile(file, (done) => progress.push(done), size), want, 'same identity as sha256sum over all bytes');
  const read = bytesRead() - before;
  assert.ok(read < 16 << 20, `read ${read} bytes of a file holding 3 KB of data (holes must not be read)`);
  assert.is(progress.at(-1), size, 'progress ends at the full size');
});

test('a file that is not sparse, and an empty one, hash as before', async () => {
  const file = join(dir, 'plain.bin');
  await fs.writeFile(file, randomBytes(3 << 20));
  assert.is(await hashFile(file), (await exec('sha256sum', [file])).stdout.slice(0, 64));
  const empty = join(dir, 'empty');
  await fs.writeFile(empty, '');
  assert.is(await hashFile(empty), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test.run();
