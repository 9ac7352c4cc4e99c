// data.img: a sparse ext4 file made without root, root-owned root directory, labelled.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDataDisk } from '../../lib/build/ext4.ts';
import { exec } from '../../lib/exec.ts';

let work: string;
test.before(async () => { work = await fs.mkdtemp(join(tmpdir(), `sov-datadisk-${process.pid}-`)); });
test.after(async () => { await fs.rm(work, { recursive: true, force: true }); });

test('a 4G data disk is sparse and a valid ext4 file system', async () => {
  const out = join(work, 'data.img');
  const size = 4 * 1024 ** 3;
  await createDataDisk({ out, sizeBytes: size, label: 'sovereign-data' });
  const st = await fs.stat(out);
  assert.is(st.size, size);
  assert.ok(st.blocks * 512 < size / 50, `allocated ${st.blocks * 512} bytes of ${size}`);
  const head = (await exec('dumpe2fs', ['-h', out])).stdout;
  assert.match(head, /Filesystem volume name:\s+sovereign-data/);
  assert.match(head, /Filesystem features:.*extent/);
  assert.match(head, /Block size:\s+4096/);
  const root = (await exec('debugfs', ['-R', 'stat /', out])).stdout;
  assert.match(root, /User:\s+0\s+Group:\s+0/);
  const fsck = await exec('e2fsck', ['-fn', out], { nothrow: true });
  assert.is(fsck.code, 0, fsck.stdout + fsck.stderr);
});

test('no partial file is left when mkfs fails', async () => {
  const out = join(work, 'tiny.img');
  let failed = false;
  await createDataDisk({ out, sizeBytes: 4096, label: 'x' }).catch(() => { failed = true; });
  assert.ok(failed, 'a 4 KiB disk cannot hold ext4');
  assert.not.ok(await fs.access(out).then(() => true, () => false));
});

test.run();
