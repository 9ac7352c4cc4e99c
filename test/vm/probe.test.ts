// Port probes run through a local device session against test-double servers on 127.0.0.1 (a fake PostgreSQL, a silent server, an instant closer).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fs } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceSession } from '../../lib/device/device.ts';
import { portAddress, postgresProbeScript, probe, tcpProbeScript } from '../../lib/vm/probe.ts';
import { freePort, openSession, repoRoot, tinyConfig } from '../support/tiny-vm.ts';

let root = '';
let session: DeviceSession;
const servers: Server[] = [];
const sockets: Socket[] = [];
const startups: Buffer[] = [];

/** Starts a server on 127.0.0.1 with `onConnect`; returns its port. */
async function serve(onConnect: (s: Socket) => void): Promise<number> {
  const server = createServer((s) => { sockets.push(s); s.on('error', () => {}); onConnect(s); });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

/** Test double of PostgreSQL: refuses SSL/GSS (libpq asks first), reads a startup message, answers AuthenticationMD5Password. */
const fakePostgres = (s: Socket) => {
  let buf = Buffer.alloc(0);
  s.on('data', (c) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= 8 && buf.length >= buf.readInt32BE(0)) {
      const len = buf.readInt32BE(0);
      const msg = buf.subarray(0, len);
      buf = buf.subarray(len);
      if (len === 8 && [80877103, 80877104].includes(msg.readInt32BE(4))) { s.write('N'); continue; }
      startups.push(msg);
      const r = Buffer.alloc(13);
      r.write('R', 0); r.writeInt32BE(12, 1); r.writeInt32BE(5, 5); r.write('salt', 9);
      s.write(r);
    }
  });
};

test.before(async () => {
  root = await fs.mkdtemp(join(tmpdir(), `probe-${process.pid}-`));
  session = await openSession(tinyConfig(root).device, repoRoot);
});
test.after(async () => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
  await session.close();
  await fs.rm(root, { recursive: true, force: true });
});

test('tcp: a server that holds the connection answers; a closed port and an instant close (qemu forwarding to nothing) do not', async () => {
  const silent = await serve(() => {});
  const talker = await serve((s) => s.end('SSH-2.0-test\r\n'));
  const closer = await serve((s) => s.destroy());
  const closed = await freePort();
  assert.ok(await probe(session, tcpProbeScript('127.0.0.1', silent)), 'silent server');
  assert.ok(await probe(session, tcpProbeScript('127.0.0.1', talker)), 'server that speaks and closes');
  assert.not.ok(await probe(session, tcpProbeScript('127.0.0.1', closer)), 'accept-then-close');
  assert.not.ok(await probe(session, tcpProbeScript('127.0.0.1', closed)), 'closed port');
});

test('postgres: the wire check sends a protocol-3 startup and wants an auth request back; pg_isready agrees', async () => {
  const pg = await serve(fakePostgres);
  const http = await serve((s) => s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
  assert.ok(await probe(session, postgresProbeScript('127.0.0.1', pg, { preferPgIsready: false })), 'wire check vs fake postgres');
  const msg = startups[0];
  assert.is(msg.readInt32BE(0), msg.length);
  assert.is(msg.readInt32BE(4), 196608);
  assert.is(msg.subarray(8).toString('latin1'), 'user\0postgres\0database\0postgres\0\0');
  assert.not.ok(await probe(session, postgresProbeScript('127.0.0.1', http, { preferPgIsready: false })), 'wire check vs http');
  assert.not.ok(await probe(session, postgresProbeScript('127.0.0.1', await freePort(), { preferPgIsready: false })), 'wire check vs closed');
  const hasPgIsready = (await session.run('command -v pg_isready', { nothrow: true })).code === 0;
  if (hasPgIsready) {
    assert.ok(await probe(session, postgresProbeScript('127.0.0.1', pg)), 'pg_isready vs fake postgres');
    assert.not.ok(await probe(session, postgresProbeScript('127.0.0.1', await freePort())), 'pg_isready vs closed');
  }
  assert.not.match(postgresProbeScript('127.0.0.1', pg), /PGPASSWORD|password/i);
});

test('where a port is reached: loopback forward on qemu, guest IP on crosvm', () => {
  const p = { name: 'sql', index: 1, ports: [5432], guestIp: '192.168.100.2' };
  assert.equal(portAddress({ ...p, hypervisor: 'qemu' }, 5432, {}), { host: '127.0.0.1', port: 20100 });
  assert.equal(portAddress({ ...p, hypervisor: 'qemu' }, 5432, { SOVEREIGN_PORT_SQL_5432: '25432' }), { host: '127.0.0.1', port: 25432 });
  assert.equal(portAddress({ ...p, hypervisor: 'crosvm' }, 5432, {}), { host: '192.168.100.2', port: 5432 });
});

test.run();
