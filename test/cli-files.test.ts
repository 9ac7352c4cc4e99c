// What the CLI does to the files it keeps: a corrupt lock is stale, a dry run leaves last.json and a read-only .sovereign alone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin, checkout, sovereign } from './support/cli.ts';

const root = checkout('sovereign-files-');
const run = (args: string[]) => sovereign(args, { cwd: root });
const lock = join(root, '.sovereign', 'lock');

for (const [name, content] of [['empty', ''], ['garbage', 'garbage\n'], ['without a pid', '{"since":"x"}']]) {
  test(`a ${name} lock file is stale: the run takes it over`, async () => {
    mkdirSync(join(root, '.sovereign'), { recursive: true });
    writeFileSync(lock, content);
    const r = await run(['run', 'sql:status']);
    assert.is(r.code, 0, r.stderr);
    assert.not.ok(existsSync(lock), 'released after the run');
  });
}

test('--dry-run leaves the last real run\'s last.json as it was', async () => {
  const last = join(root, '.sovereign', 'runs', 'last.json');
  assert.is((await run(['run', 'sql:status'])).code, 0);
  const before = readFileSync(last, 'utf8');
  const r = await run(['run', 'sql:build', '--dry-run']);
  assert.is(r.code, 0, r.stderr);
  assert.is(readFileSync(last, 'utf8'), before);
});

test('--dry-run works when .sovereign is not writable (another user\'s checkout)', () => {
  // As root nothing is read-only: run as nobody, in a checkout root owns (folders 0755).
  chmodSync(root, 0o755);
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, bin, 'run', 'sql:build', '--dry-run'], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', HOME: '/nonexistent' } });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /would run/);
});

test('--dry-run in a checkout it cannot write, after a new file there: the config is bundled again, its record not saved', () => {
  writeFileSync(join(root, 'notes.txt'), 'a new file beside the config: the last bundle is no longer vouched for\n');
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, bin, 'run', 'sql:build', '--dry-run'], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', HOME: '/nonexistent' } });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /would run/);
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
