// Test fixture: a real sshd in its own network namespace (a separate "device" host), reached over a veth pair.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Device } from '../../lib/config.ts';
import { exec } from '../../lib/exec.ts';

export interface SshdDevice {
  device: Device;
  /** The device root (a private directory: the namespace shares our filesystem). */
  root: string;
  /** The device's network namespace (`ip netns exec NS …` runs a command on the device's network). */
  ns: string;
  /** Host side of the veth pair: every byte to the device crosses it. */
  hostIf: string;
  /** Bytes through the host-side veth so far (both directions). */
  wireBytes(): Promise<number>;
  cleanup(): Promise<void>;
}

const ip = (...args: string[]) => exec('ip', args);

export interface SshdOptions {
  /** PATH of the device's shells (sshd's SetEnv), e.g. to put a test's stand-in for one command first. */
  path?: string;
}

export async function startSshdDevice(o: SshdOptions = {}): Promise<SshdDevice> {
  const tag = `${process.pid}`.slice(-6);
  const ns = `sov-ns-${tag}`;
  const hostIf = `sovh${tag}`;
  const devIf = `sovd${tag}`;
  // A private /30 in 10.231.0.0/16 picked from the pid, so parallel test processes do not collide.
  const slot = (process.pid % 16384) * 4;
  const net = `10.231.${slot >> 8}.`;
  const hostIp = `${net}${(slot & 255) + 1}`;
  const devIp = `${net}${(slot & 255) + 2}`;
  const dir = await fs.mkdtemp(join(tmpdir(), 'sov-sshd-'));
  const root = await fs.mkdtemp(join(tmpdir(), 'sov-devroot-'));
  let sshd: ReturnType<typeof spawn> | undefined;

  const cleanup = async () => {
    if (sshd?.pid) try { process.kill(sshd.pid, 'SIGTERM'); } catch { /* gone */ }
    // Per-connection sshd processes live in the namespace too: stop them by pid.
    const pids = await exec('ip', ['netns', 'pids', ns], { nothrow: true }).then((r) => r.stdout.split(/\s+/).filter(Boolean), () => []);
    for (const p of pids) try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ }
    await exec('ip', ['netns', 'del', ns], { nothrow: true }).catch(() => undefined);
    await exec('ip', ['link', 'del', hostIf], { nothrow: true }).catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rm(root, { recursive: true, force: true });
  };

  try {
    await ip('netns', 'add', ns);
    await ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', devIf);
    await ip('link', 'set', devIf, 'netns', ns);
    await ip('addr', 'add', `${hostIp}/30`, 'dev', hostIf);
    await ip('link', 'set', hostIf, 'up');
    await ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
    await ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${devIp}/30`, 'dev', devIf);
    await ip('netns', 'exec', ns, 'ip', 'link', 'set', devIf, 'up');

    const hostKey = join(dir, 'host_key');
    const clientKey = join(dir, 'id_ed25519');
    await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
    await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey]);
    await fs.copyFile(`${clientKey}.pub`, join(dir, 'authorized_keys'));
    const hostPub = (await fs.readFile(`${hostKey}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
    await fs.writeFile(join(dir, 'known_hosts'), `${devIp} ${hostPub}\n`);
    await fs.writeFile(join(dir, 'sshd_config'), [
      `ListenAddress ${devIp}`,
      'Port 22',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'MaxSessions 64',
      'MaxStartups 64',
      'LogLevel ERROR',
      'Subsystem sftp /usr/lib/openssh/sftp-server',
      ...(o.path ? [`SetEnv PATH=${o.path}`] : []),
      '',
    ].join('\n'));
    await fs.mkdir('/run/sshd', { recursive: true });
    sshd = spawn('ip', ['netns', 'exec', ns, '/usr/sbin/sshd', '-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: 'ignore' });
    await waitForPort(devIp, 22, 10_000);
  } catch (e) {
    await cleanup();
    throw e;
  }

  const device: Device = {
    name: 'box',
    transport: 'ssh',
    hypervisor: 'qemu',
    arch: 'x86_64',
    root,
    host: devIp,
    user: 'root',
    port: 22,
    identity: join(dir, 'id_ed25519'),
    strictHostKeyChecking: 'yes',
    knownHosts: join(dir, 'known_hosts'),
  };
  const stat = async (name: string) => Number(await fs.readFile(`/sys/class/net/${hostIf}/statistics/${name}`, 'utf8'));
  return { device, root, ns, hostIf, wireBytes: async () => (await stat('rx_bytes')) + (await stat('tx_bytes')), cleanup };
}

async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect({ host, port }, () => { s.destroy(); res(true); });
      s.on('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`sshd on ${host}:${port} did not come up`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
