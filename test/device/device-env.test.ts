// Finding #9: device commands on the local device (start.sh, its supervisor, qemu) do not inherit sovereign's whole
// environment, and start.sh lets a SOVEREIGN_PORT_* override reach qemu's hostfwd only as a port number.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localTransport } from '../../lib/device/local.ts';
import { exec } from '../../lib/exec.ts';
import { qemuNetwork } from '../../lib/vm/network.ts';

test('local device commands see no remote-cache token or signing key, only what a shell needs', async () => {
  const saved = { ...process.env };
  process.env.SOVEREIGN_REMOTE_CACHE_TOKEN = 'token-must-not-leak';
  process.env.SOVEREIGN_REMOTE_CACHE_SIGNATURE_KEY = 'key-must-not-leak';
  try {
    const r = await localTransport(tmpdir()).run('env');
    assert.not.match(r.stdout, 'must-not-leak');
    assert.match(r.stdout, /^PATH=/m, 'PATH is kept');
  } finally {
    process.env = saved;
  }
});

/** Runs the network part of a qemu start.sh in a VM folder with `port` as sql's override; exit code and stderr. */
async function network(port: string | undefined): Promise<{ code: number; stderr: string; args: string }> {
  const root = mkdtempSync(join(tmpdir(), 'sov-start-env-'));
  try {
    const dir = join(root, 'vm', 'sql');
    mkdirSync(dir, { recursive: true });
    const script = `${qemuNetwork({ name: 'sql', guestIp: '192.168.100.2', ports: [5432], expose: [], hypervisor: 'qemu', index: 1 })}\necho "$@"`;
    const env = { PATH: process.env.PATH, ...(port !== undefined && { SOVEREIGN_PORT_SQL_5432: port }) };
    const r = await exec('sh', ['-c', script], { cwd: dir, env, nothrow: true });
    return { code: r.code, stderr: r.stderr, args: r.stdout };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('start.sh refuses a port override that is not a port number, before qemu sees it', async () => {
  for (const bad of ['0.0.0.0:15432', '15432,hostfwd=tcp::2222-:22', '70000', '0', '']) {
    const r = await network(bad);
    if (bad === '') { assert.is(r.code, 0, 'empty: the default'); continue; }
    assert.is(r.code, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, 'SOVEREIGN_PORT_SQL_5432 must be a port number');
  }
  const ok = await network('15432');
  assert.is(ok.code, 0, ok.stderr);
  assert.match(ok.args, 'hostfwd=tcp:127.0.0.1:15432-');
  const none = await network(undefined);
  assert.match(none.args, 'hostfwd=tcp:127.0.0.1:20100-');
});

test.run();
