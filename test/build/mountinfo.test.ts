// Leftover debootstrap mounts are found under a path with a space (mountinfo escapes it as \040), with a real bind mount.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountsUnder } from '../../lib/build/base.ts';
import { exec } from '../../lib/exec.ts';

test('a mount under "a dir with spaces" is found by its real path', async () => {
  const dir = await fs.mkdtemp(join(tmpdir(), 'sov mount test '));
  const target = join(dir, 'target dir', 'proc');
  await fs.mkdir(target, { recursive: true });
  const src = join(dir, 'src');
  await fs.mkdir(src);
  await exec('mount', ['--bind', src, target]);
  try {
    assert.equal(mountsUnder(join(dir, 'target dir')), [target]);
  } finally {
    await exec('umount', ['-l', target], { nothrow: true });
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test.run();
