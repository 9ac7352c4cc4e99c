// ssh options with paths that hold a space or a `%`: what the real ssh client resolves (`ssh -G`) is the path as written.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Device } from '../../lib/config.ts';
import { sshArgs } from '../../lib/device/ssh.ts';
import { exec } from '../../lib/exec.ts';

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

test.run();
