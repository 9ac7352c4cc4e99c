// Finding #9: device commands on the local device (start.sh, its supervisor, qemu) and the ssh and adb processes (a
// connection master, adb's server: both outlive sovereign) do not inherit sovereign's whole environment, and start.sh
// lets a SOVEREIGN_PORT_* override reach qemu's hostfwd only as a port number.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adbTransport } from '../../lib/device/adb.ts';
import { localTransport } from '../../lib/device/local.ts';
import { sshTransport } from '../../lib/device/ssh.ts';
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

/** Runs `fn` with the remote-cache secrets (and an ssh agent socket, adb settings) in sovereign's environment. */
async function withSecrets(fn: () => Promise<void>): Promise<void> {
  const saved = { ...process.env };
  Object.assign(process.env, { SOVEREIGN_REMOTE_CACHE_TOKEN: 'token-must-not-leak', SOVEREIGN_REMOTE_CACHE_SIGNATURE_KEY: 'key-must-not-leak', SSH_AUTH_SOCK: '/run/agent.sock' });
  try { await fn(); } finally { process.env = saved; }
}

test('the ssh processes (the connection master lives on for minutes) get a shell\'s environment and the agent socket', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sov-ssh-env-'));
  try {
    // A stand-in ssh that records the environment it was given (its path is in the script: no variable reaches it).
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin', 'ssh'), `#!/bin/sh\nenv > ${join(dir, 'env.txt')}\n`);
    chmodSync(join(dir, 'bin', 'ssh'), 0o755);
    await withSecrets(async () => {
      process.env.PATH = `${join(dir, 'bin')}:${process.env.PATH}`;
      const t = await sshTransport({ name: 'box', transport: 'ssh', host: 'box.invalid', hypervisor: 'qemu', arch: 'x86_64', root: '/srv/sovereign' }, dir);
      await t.run('true');
      await t.close();
    });
    const env = readFileSync(join(dir, 'env.txt'), 'utf8');
    assert.not.match(env, 'must-not-leak');
    assert.match(env, /^SSH_AUTH_SOCK=\/run\/agent.sock$/m, 'the agent socket is kept');
    assert.match(env, /^PATH=/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('adb (whose server outlives sovereign) gets a shell\'s environment and its own ADB_*/ANDROID_* settings', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sov-adb-env-'));
  try {
    mkdirSync(join(dir, 'bin'));
    mkdirSync(join(dir, 'device', 'data', 'local', 'tmp'), { recursive: true });
    // The recorded adb stand-in (no adbd here), configured through ADB_STANDIN_*: kept as adb's own settings.
    symlinkSync(join(import.meta.dirname, '..', 'support', 'adb-standin'), join(dir, 'bin', 'adb'));
    await withSecrets(async () => {
      Object.assign(process.env, {
        PATH: `${join(dir, 'bin')}:${process.env.PATH}`, ADB_STANDIN_ROOT: join(dir, 'device'), ADB_STANDIN_LOG: join(dir, 'log'),
        ADB_STANDIN_DEVICES: 'R5CT0001 device', ANDROID_ADB_SERVER_PORT: '5038',
      });
      const t = await adbTransport({ name: 'phone', transport: 'adb', hypervisor: 'crosvm', arch: 'aarch64', root: '/data/sovereign' });
      const r = await t.run('env');
      assert.not.match(r.stdout, 'must-not-leak');
      assert.match(r.stdout, /^ANDROID_ADB_SERVER_PORT=5038$/m, 'adb\'s own settings are kept');
      assert.not.match(r.stdout, 'SSH_AUTH_SOCK', 'not another tool\'s');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
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
