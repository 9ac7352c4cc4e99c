// What keeps an ordinary user from mmdebstrap --mode=unshare, read from /etc and /proc/sys stand-ins (folders of
// the same files), so every gap is checked without changing this machine's kernel switches.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freeStart, rootlessProblem, subIds } from '../../lib/build/rootless.ts';

const alice = { name: 'alice', uid: 1000 };
const fine = { 'etc/subuid': 'alice:100000:65536\n', 'etc/subgid': 'alice:100000:65536\n', 'sys/kernel/unprivileged_userns_clone': '1\n', 'sys/user/max_user_namespaces': '15000\n' };

function problem(files: Record<string, string | undefined>, idmap = true) {
  const dir = mkdtempSync(join(tmpdir(), 'sovereign-rootless-checks-'));
  try {
    for (const [path, text] of Object.entries(files)) {
      if (text === undefined) continue;
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    mkdirSync(join(dir, 'etc'), { recursive: true });
    return rootlessProblem(alice, { etc: join(dir, 'etc'), procSys: join(dir, 'sys'), idmap });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('rootless checks: nothing missing, nothing said (also when the kernel has no unprivileged_userns_clone)', () => {
  assert.is(problem(fine), undefined);
  assert.is(problem({ ...fine, 'sys/kernel/unprivileged_userns_clone': undefined }), undefined);
});

test('rootless checks: as mmdebstrap reads them, only the first line naming the user by name counts (not its uid, not a later line)', () => {
  assert.match(problem({ ...fine, 'etc/subuid': '1000:300000:65536\n' })?.message ?? '', /for alice in \S+\/etc\/subuid$/, 'a line naming the uid');
  const short = problem({ ...fine, 'etc/subgid': 'alice:100000:30000\nalice:200000:40000\n' });
  assert.match(short?.message ?? '', /for alice in \S+\/etc\/subgid$/, 'two short lines');
  assert.match(short?.hint ?? '', /make alice's first line in \/etc\/subuid and \/etc\/subgid alice:\d+:65536 \(mmdebstrap reads only the first/, 'adding a line would not help');
  assert.is(problem({ ...fine, 'etc/subuid': 'bob:1:5\nalice:100000:65536\nalice:300000:10\n' }), undefined, 'a full first line');
});

test('rootless checks: no newuidmap/newgidmap names the uidmap package', () => {
  const e = problem(fine, false);
  assert.is(e?.code, 'environment');
  assert.match(e?.hint ?? '', /apt-get install uidmap/);
});

test('rootless checks: missing or short subordinate ranges name the file and a free line to add', () => {
  const none = problem({ ...fine, 'etc/subuid': 'bob:100000:65536\n', 'etc/subgid': undefined });
  assert.is(none?.code, 'environment');
  assert.match(none?.message ?? '', /for alice in \S+\/etc\/subuid and \S+\/etc\/subgid/);
  assert.match(none?.hint ?? '', /add the line alice:165536:65536 to \/etc\/subuid and \/etc\/subgid/);
  assert.match(none?.hint ?? '', /usermod --add-subuids 165536-231071 --add-subgids 165536-231071 alice/);
  const short = problem({ ...fine, 'etc/subgid': 'alice:100000:1000\n' });
  assert.match(short?.message ?? '', /for alice in \S+\/etc\/subgid$/);
});

test('rootless checks: each kernel switch that forbids user namespaces is named with its sysctl', () => {
  assert.match(problem({ ...fine, 'sys/kernel/unprivileged_userns_clone': '0\n' })?.hint ?? '', /sysctl -w kernel\.unprivileged_userns_clone=1/);
  assert.match(problem({ ...fine, 'sys/user/max_user_namespaces': '0\n' })?.hint ?? '', /sysctl -w user\.max_user_namespaces=/);
  assert.match(problem({ ...fine, 'sys/kernel/apparmor_restrict_unprivileged_userns': '1\n' })?.hint ?? '', /apparmor_restrict_unprivileged_userns=0/);
});

test('rootless checks: subIds is the count of the user\'s first line; freeStart is past every range', () => {
  assert.is(subIds('alice:100000:30000\nbob:1:5\nalice:200000:40000\n', alice), 30_000);
  assert.is(subIds('1000:100000:65536\n', alice), 0);
  assert.is(freeStart(['', '']), 100_000);
  assert.is(freeStart(['a:100000:65536\n', 'b:300000:10\n']), 300_010);
});

test.run();
