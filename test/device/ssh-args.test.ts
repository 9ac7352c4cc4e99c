// ssh options with paths that hold a space or a `%`: what the real ssh client resolves (`ssh -G`) is the path as written,
// and a real login (sshd in its own network namespace) works with the key and known_hosts in such folders.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '../../lib/config.ts';
import { openSession } from '../../lib/device/session.ts';
import { sshArgs } from '../../lib/device/ssh.ts';
import { exec } from '../../lib/exec.ts';
import { startSshdDevice } from '../support/sshd-netns.ts';

test('ControlPath, UserKnownHostsFile keep spaces and % literally', async () => {
  const device = { name: 'box', transport: 'ssh', host: '127.0.0.1', knownHosts: '/tmp/my hosts/known 100%' } as unknown as Device;
  const control = '/tmp/sov ssh %dir/cm';
  const args = sshArgs(device, '/repo', control);
  const r = await exec('ssh', ['-G', ...args], { nothrow: true });
  assert.is(r.code, 0, r.stderr);
  const conf = r.stdout;
  assert.match(conf, /^controlpath \/tmp\/sov ssh %dir\/cm$/m, conf.split('\n').filter((l) => /controlpath|knownhosts|identityfile/.test(l)).join('\n'));
  assert.match(conf, /^userknownhostsfile \/tmp\/my hosts\/known 100%$/m);
});

// `ssh -G` does not expand identity files, so only a login shows it: an `-i` path with a % made ssh fail
// ("percent_dollar_expand: failed") before it connected.
test('a login with the identity and known_hosts in a folder named "keys 100%d x" works', async () => {
  const fx = await startSshdDevice();
  const dir = join(fx.root, '..', `${fx.root.split('/').pop()} keys 100%d x`);
  try {
    await fs.mkdir(dir);
    const identity = join(dir, 'id 100%');
    const knownHosts = join(dir, 'known hosts%');
    await fs.copyFile(fx.device.identity!, identity);
    await fs.chmod(identity, 0o600);
    await fs.copyFile(fx.device.knownHosts!, knownHosts);
    const session = await openSession({ ...fx.device, identity, knownHosts }, dir);
    try {
      const r = await session.run('echo logged in');
      assert.is(r.stdout.trim(), 'logged in');
    } finally {
      await session.close();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
    await fx.cleanup();
  }
});

test.run();
