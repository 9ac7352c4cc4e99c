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

const asNobody = (args: string[]) => spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, bin, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', HOME: '/nonexistent' } });

test('.env as a folder: a dry run and a real run exit 4 with the folder hint (not 70), preflight says to move it', async () => {
  // Secrets on the device first, so the dry run's check compares them with .env (it reads .env).
  assert.is((await run(['run', 'sql:push-secrets'])).code, 0);
  rmSync(join(root, '.env'));
  mkdirSync(join(root, '.env'));
  for (const args of [['run', 'sql:push-secrets', '--dry-run'], ['run', 'sql:push-secrets']]) {
    const r = await run(args);
    assert.is(r.code, 4, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout + r.stderr, /EISDIR[^]*hint: a folder is where a file belongs/, args.join(' '));
  }
  const env = JSON.parse((await run(['preflight', '--json'])).stdout).find((c: { name: string }) => c.name === '.env');
  assert.is(env.ok, false);
  assert.match(env.fix, /move the folder away/);
  rmSync(join(root, '.env'), { recursive: true });
});

test('a \\n escape in a .env value: preflight names the key, the run stops with exit 4 (not a task failure, exit 1)', async () => {
  writeFileSync(join(root, '.env'), 'POSTGRES_PASSWORD="one\\ntwo"\n', { mode: 0o600 });
  const pre = JSON.parse((await run(['preflight', '--json'])).stdout).find((c: { name: string }) => c.name === '.env keys for sql');
  assert.is(pre.ok, false);
  assert.match(pre.detail, /POSTGRES_PASSWORD contains a line break/);
  const r = await run(['run', 'sql:push-secrets']);
  assert.is(r.code, 4, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /hint: put POSTGRES_PASSWORD on one line in \.env/);
  rmSync(join(root, '.env'));
});

test('a .env this user may not read: preflight says to let it (chmod), not to fix a line', () => {
  writeFileSync(join(root, '.env'), 'POSTGRES_PASSWORD=x\n', { mode: 0o600 });
  const r = asNobody(['preflight', '--json']);
  const env = JSON.parse(r.stdout).find((c: { name: string }) => c.name === '.env');
  assert.is(env.ok, false, r.stdout);
  assert.match(env.detail, /EACCES/);
  assert.match(env.fix, /let this user read \.env/);
  assert.not.match(env.fix, /line/);
  rmSync(join(root, '.env'));
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
