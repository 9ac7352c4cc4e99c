// What a killed run leaves (temp copies of .env, outputs, records, the record index, blobs and block indexes;
// upload/import staging; kernel fetch, sparse, delta, ssh and build folders in the system temp folder) is removed by
// the next run; what another live process owns, or may own, is kept.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { project } from '../support/engine.ts';
import { tmpName } from '../../lib/fsutil.ts';
import { unmarkClean } from '../../lib/sweep.ts';

test('a run sweeps the temp files a killed run left, and keeps a live process\'s kernel folder', async () => {
  const p = await project();
  try {
    await p.run(['a:gen']);
    const sov = join(p.root, '.sovereign');
    // A killed run removed the last clean run's marker before it wrote anything, and never wrote its own.
    assert.ok(existsSync(join(sov, 'state', 'clean-exit')), 'a run that ended with every task done leaves the marker');
    await fs.rm(join(sov, 'state', 'clean-exit'));
    const leftovers = [
      tmpName(join(p.root, '.env')), // a full copy of the secrets
      tmpName(join(sov, 'out', 'a', 'gen.txt')),
      tmpName(join(sov, 'cache', 'records', `${'a'.repeat(64)}.json`)),
      tmpName(join(sov, 'cache', 'blobs', 'ab', 'a'.repeat(64))),
      join(sov, 'cache', 'tmp', 'upload-x1', 'artifact.gz'),
      join(sov, 'cache', 'tmp', 'import-x2', 'records', 'r.json'),
      tmpName(join(sov, 'cache', 'records.idx')),
      tmpName(join(sov, 'blocks', `${'b'.repeat(64)}.idx`)),
      join(sov, 'cache', 'records', '.0123456789ab.tmp'), // an older version's temp name
    ];
    // In the repo root, besides .env's: the temps of `cache export cache.tgz` or `--summary out.json`, which run
    // without this lock (a sweep that took them made a concurrent export fail with ENOENT, exit 70).
    const userTemps = [tmpName(join(p.root, 'cache.tgz')), tmpName(join(p.root, 'out.json'))];
    leftovers.push(tmpName(join(p.root, 'sovereign.lock.json')), join(p.root, '.0123456789ab.tmp'));
    for (const f of [...leftovers, ...userTemps]) { await fs.mkdir(join(f, '..'), { recursive: true }); await fs.writeFile(f, 'SECRET=1\n'); }
    const dead = join(tmpdir(), 'sovereign-kernel-999999999-abc');
    const live = join(tmpdir(), `sovereign-kernel-${process.pid}-abc`);
    // No pid in these names: a day old is debris (a data disk's gzip, a push's new bytes), younger may be another run's.
    const stale = ['sov-sparse', 'sov-delta', 'sov-ssh', 'sovereign-build'].map((n) => join(tmpdir(), `${n}-${process.pid}-old`));
    const young = join(tmpdir(), `sov-delta-${process.pid}-young`);
    for (const d of [dead, live, ...stale, young]) await fs.mkdir(join(d, 'x'), { recursive: true });
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600_000);
    for (const d of stale) await fs.utimes(d, twoDaysAgo, twoDaysAgo);
    try {
      await fs.writeFile(join(p.root, 'inputs', 'a.txt'), 'changed\n');
      const r = await p.run(['a:gen']);
      assert.ok(r.ok);
      for (const f of leftovers) assert.not.ok(existsSync(f), `${f} swept`);
      for (const f of userTemps) assert.ok(existsSync(f), `${f} (not a run's: another command may be writing it) kept`);
      assert.not.ok(existsSync(dead), 'a dead run\'s kernel folder is swept');
      assert.ok(existsSync(live), 'a live process\'s kernel folder is kept');
      for (const d of stale) assert.not.ok(existsSync(d), `${d} (two days old) is swept`);
      assert.ok(existsSync(young), 'a young sov-delta-* folder is kept');
    } finally {
      for (const d of [live, dead, ...stale, young]) await fs.rm(d, { recursive: true, force: true });
    }
  } finally {
    await p.cleanup();
  }
});

test('a symlinked .env: the temp copy a killed write left beside its target is swept, other files there are kept', async () => {
  const p = await project();
  const secrets = await fs.mkdtemp(join(tmpdir(), 'sov-secrets-'));
  try {
    await fs.writeFile(join(secrets, 'app.env'), 'SECRET=1\n');
    await fs.symlink(join(secrets, 'app.env'), join(p.root, '.env'));
    const leftover = tmpName(join(secrets, 'app.env')); // what writeFileAtomic through the link leaves when killed
    const others = [tmpName(join(secrets, 'other.env')), join(secrets, 'notes.txt')];
    for (const f of [leftover, ...others]) await fs.writeFile(f, 'SECRET=1\n');
    assert.ok((await p.run(['a:gen'])).ok);
    assert.not.ok(existsSync(leftover), `${leftover} swept`);
    for (const f of others) assert.ok(existsSync(f), `${f} kept: not the .env's own temp`);
  } finally {
    await fs.rm(secrets, { recursive: true, force: true });
    await p.cleanup();
  }
});

test('a dangling .env link: the temp copy a killed first write left beside the file it names is swept', async () => {
  const p = await project();
  const secrets = await fs.mkdtemp(join(tmpdir(), 'sov-secrets-'));
  try {
    await fs.symlink(join(secrets, 'app.env'), join(p.root, '.env')); // the file is not made yet
    const leftover = tmpName(join(secrets, 'app.env'));
    const other = tmpName(join(secrets, 'other.env'));
    for (const f of [leftover, other]) await fs.writeFile(f, 'SECRET=1\n');
    assert.ok((await p.run(['a:gen'])).ok);
    assert.not.ok(existsSync(leftover), `${leftover} swept`);
    assert.ok(existsSync(other), `${other} kept: not the .env's own temp`);
  } finally {
    await fs.rm(secrets, { recursive: true, force: true });
    await p.cleanup();
  }
});

test('a failed run or a store command leaves no clean marker, so the next run lists every folder', async () => {
  const p = await project();
  try {
    const marker = join(p.root, '.sovereign', 'state', 'clean-exit');
    assert.ok((await p.run(['a:gen'])).ok);
    assert.ok(existsSync(marker), 'marker after a clean run');
    const r = await p.run(['a:fail']);
    assert.not.ok(r.ok);
    assert.not.ok(existsSync(marker), 'a failed run removed it and wrote none');
    // The next run sweeps everything: a leftover beside an output (as a killed run would leave) is removed.
    const leftover = tmpName(join(p.root, '.sovereign', 'out', 'a', 'gen.txt'));
    await fs.writeFile(leftover, 'x');
    assert.ok((await p.run(['a:gen'])).ok);
    assert.not.ok(existsSync(leftover), 'swept after a run without the marker');
    assert.ok(existsSync(marker));
    assert.ok(await unmarkClean(p.root), 'a store command under the lock removes it');
    assert.not.ok(existsSync(marker));
  } finally {
    await p.cleanup();
  }
});

test.run();
