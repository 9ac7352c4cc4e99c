// The README's first commands work as a new user types them: as root on a minimal Debian (no sudo), and as a user with sudo.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT } from '../lib/error.ts';
import { repo } from './support/cli.ts';

const work = mkdtempSync(join(tmpdir(), 'sovereign-readme-'));
chmodSync(work, 0o755);
const stub = (dir: string, name: string, body: string) => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
};

/** The shell lines of the README's "The two commands" block. */
function twoCommands(): string[] {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const block = /## The two commands[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  return block.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
}

test('the README\'s two commands run as root where there is no sudo', () => {
  const lines = twoCommands();
  assert.is(lines.length, 2);
  // Stand-ins for what the lines call, so the test checks how they are invoked, not apt-get or a VM build.
  const bin = join(work, 'bin');
  for (const tool of ['npm', 'npx']) stub(bin, tool, `echo "${tool} $*" >> ${work}/calls`);
  stub(join(work, 'scripts'), 'setup-host.sh', `echo "setup-host.sh $* as $(id -u)" >> ${work}/calls`);
  for (const line of lines) {
    const r = spawnSync('sh', ['-c', line], { cwd: work, encoding: 'utf8', env: { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin` } });
    assert.is(r.status, 0, `${line}\n${r.stderr}`);
  }
  const calls = readFileSync(join(work, 'calls'), 'utf8');
  assert.match(calls, /setup-host\.sh {2}as 0/);
  assert.match(calls, /npx sovereign run sql:start/);
  assert.match(calls, /npm test/);
});

test('setup-host.sh asks sudo for root when run by another user, and says what to do without sudo', () => {
  // A copy in a folder every user can enter: the checkout itself may sit in root's 0700 home.
  const script = join(work, 'setup-host.sh');
  copyFileSync(join(repo, 'scripts', 'setup-host.sh'), script);
  chmodSync(script, 0o755);
  const bin = join(work, 'sudo-bin');
  stub(bin, 'sudo', 'echo "sudo $*"');
  const asUser = (path: string) => spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', script, '--no-daemon'], { cwd: work, encoding: 'utf8', env: { PATH: path } });
  const withSudo = asUser(`${bin}:/usr/bin:/bin`);
  assert.is(withSudo.status, 0, withSudo.stderr);
  assert.is(withSudo.stdout.trim(), `sudo ${script} --no-daemon`);
  const without = asUser('/usr/bin:/bin');
  assert.is(without.status, 1);
  assert.match(without.stderr, /run as root/);
});

test('the README\'s exit-code table lists exactly the exit codes the CLI has', () => {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const table = /\nExit codes: ([^]*?)\n\n/.exec(readme)?.[1] ?? '';
  const listed = [...table.matchAll(/`(\d+)`/g)].map((m) => Number(m[1]));
  assert.equal(listed, Object.values(EXIT).sort((a, b) => a - b), table);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
