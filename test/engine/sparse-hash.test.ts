// hashFile on a sparse file: the sha256 of all its bytes (as sha256sum says), read only where it holds data;
// sparseIdentity (data disks): a content identity that neither reads nor hashes the holes.
import { randomBytes } from 'node:crypto';
import { promises as fs, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UserError } from '../../lib/error.ts';
import { exec } from '../../lib/exec.ts';
import { dataExtents, sparseIdentity } from '../../lib/extents.ts';
import { hashFile } from '../../lib/hash.ts';
import { bytesRead } from '../support/read-bytes.ts';

let dir: string;
test.before(async () => { dir = await fs.mkdtemp(join(tmpdir(), 'sov-sparse-hash-')); });
test.after(async () => { if (dir) await fs.rm(dir, { recursive: true, force: true }); });


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
  assert.is(await hashFile(file, (done) => progress.push(done)), want, 'same identity as sha256sum over all bytes');
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

test('sparseIdentity of a 4 GiB disk holding 3 KB: reads only the data; a function of the bytes, not of how they are allocated', async () => {
  const file = join(dir, 'disk.img');
  const size = 4 * 1024 ** 3;
  const data = [0, (1 << 30) + 5, size - 1000].map((at) => [at, randomBytes(1000)] as const);
  const fh = await fs.open(file, 'w');
  await fh.truncate(size);
  for (const [at, bytes] of data) await fh.write(bytes, 0, bytes.length, at);
  await fh.close();

  const before = bytesRead();
  const progress: number[] = [];
  const id = await sparseIdentity(file, (done) => progress.push(done));
  const read = bytesRead() - before;
  assert.ok(read < 16 << 20, `read ${read} bytes of a 4 GiB file holding 3 KB of data (holes must not be read)`);
  assert.is(progress.at(-1), size, 'progress ends at the full size');
  assert.match(id, /^[0-9a-f]{64}$/);

  // The same bytes with 8 MiB of zeros written (allocated) where the first file has a hole: the same identity.
  const dense = join(dir, 'disk-allocated.img');
  const fd = await fs.open(dense, 'w');
  await fd.truncate(size);
  for (const [at, bytes] of data) await fd.write(bytes, 0, bytes.length, at);
  await fd.write(Buffer.alloc(8 << 20), 0, 8 << 20, 512 << 20);
  await fd.close();
  assert.ok((await fs.stat(dense)).blocks * 512 >= 8 << 20, 'the zeros are allocated');
  assert.is(await sparseIdentity(dense), id, 'allocated zeros and holes are alike');

  const flipped = Buffer.from(data[1][1]);
  flipped[500] ^= 1;
  const fe = await fs.open(dense, 'r+');
  await fe.write(flipped, 0, flipped.length, data[1][0]);
  await fe.close();
  assert.is.not(await sparseIdentity(dense), id, 'one changed bit changes it');
  await fs.truncate(dense, size + 4096);
  assert.is.not(await sparseIdentity(dense), id, 'so does the size');
  await fs.rm(dense);

  // A file system without an extent map (no filefrag answer) is read whole, with the same result.
  const bin = join(dir, 'no-filefrag');
  await fs.mkdir(bin, { recursive: true });
  await fs.writeFile(join(bin, 'filefrag'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  const small = join(dir, 'small.img');
  const fs2 = await fs.open(small, 'w');
  await fs2.truncate(64 << 20);
  await fs2.write(data[0][1], 0, 1000, 3 << 20);
  await fs2.close();
  const mapped = await sparseIdentity(small);
  const path = process.env.PATH;
  process.env.PATH = `${bin}:${path}`;
  try {
    assert.is(await sparseIdentity(small), mapped, 'read whole: same identity');
  } finally {
    process.env.PATH = path;
  }
});


test('a sparse file truncated while it is hashed is a user-facing failure (exit 1 with a hint), not a bug (exit 70)', async () => {
  const file = join(dir, 'shrinks.img');
  const size = 256 << 20;
  const shrink = () => { truncateSync(file, 1 << 20); };
  for (const hash of [(p: string) => sparseIdentity(p, shrink), (p: string) => hashFile(p, shrink)]) {
    const fh = await fs.open(file, 'w');
    await fh.truncate(size);
    await fh.write(randomBytes(8 << 20), 0, 8 << 20, 0);
    await fh.write(randomBytes(1 << 20), 0, 1 << 20, size - (1 << 20));
    await fh.close();
    const e = await hash(file).then(() => undefined, (x: unknown) => x);
    assert.instance(e, UserError, `expected a UserError, got ${String(e)}`);
    assert.match((e as UserError).message, /changed while sovereign hashed it/);
    assert.ok((e as UserError).hint);
  }
  // A dense file that shrinks while streamed: the same failure, never the sha256 of what was left.
  await fs.writeFile(file, randomBytes(8 << 20));
  const e = await hashFile(file, shrink).then(() => undefined, (x: unknown) => x);
  assert.instance(e, UserError, `dense file: expected a UserError, got ${String(e)}`);
});

test.run();
