// Manual benchmark: a 4 GiB sparse data disk's first push costs its data, not its size. For a fresh disk and
// disks holding 16 and 256 MiB: the sha256 of all its bytes (the baseline: what the identity cost before, holes
// hashed as zeros), its sparseIdentity (what the push records), and the whole first push on the local device
// and over ssh (sshd in a netns): time, bytes sent, bytes read here (this process and its reaped children: cp, tar, gzip).
// Usage (as root): node --import tsx bench/data-disk.ts
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDataDisk } from '../lib/build/ext4.ts';
import type { Device } from '../lib/config.ts';
import { sparseIdentity } from '../lib/extents.ts';
import { hashFile } from '../lib/hash.ts';
import { openSession } from '../lib/device/session.ts';
import { pushDataDisk } from '../tasks/push.ts';
import { fakeContext, testService } from '../test/support/device-context.ts';
import { bytesRead } from '../test/support/read-bytes.ts';
import { startSshdDevice } from '../test/support/sshd-netns.ts';

const SIZE = 4 * 1024 ** 3;
const MiB = 1024 ** 2;
const work = await fs.mkdtemp(join(tmpdir(), `sov-bench-disk-${process.pid}-`));
const row = (...cells: string[]) => console.log(cells.map((c, i) => (i ? c.padStart(18) : c.padEnd(34))).join(''));

/** A fresh 4 GiB data disk with `data` bytes of random content written in 1 MiB pieces spread over it. */
async function disk(name: string, data: number): Promise<string> {
  const out = join(work, `${name}.img`);
  await createDataDisk({ out, sizeBytes: SIZE, label: 'bench' });
  const fh = await fs.open(out, 'r+');
  const pieces = data / MiB;
  for (let i = 0; i < pieces; i++) await fh.write(randomBytes(MiB), 0, MiB, Math.floor(((i + 0.5) * SIZE) / pieces / MiB) * MiB);
  await fh.close();
  return out;
}

async function timed<T>(f: () => Promise<T>): Promise<{ v: T; ms: number; read: number }> {
  const t = Date.now();
  const r = bytesRead();
  const v = await f();
  return { v, ms: Date.now() - t, read: bytesRead() - r };
}

const sshd = await startSshdDevice();
try {
  const local: Device = { name: 'local', transport: 'local', hypervisor: 'qemu', arch: 'x86_64', root: join(work, 'device-local') };
  row('4 GiB disk holding', 'sha256 (base)', 'sparseIdentity', 'ratio', 'read');
  const disks: Array<[string, string]> = [];
  for (const [name, data] of [['fresh (mkfs only)', 0], ['16 MiB', 16 * MiB], ['256 MiB', 256 * MiB]] as const) {
    const path = await disk(name.split(' ')[0], data);
    disks.push([name, path]);
    const base = await timed(() => hashFile(path));
    const id = await timed(() => sparseIdentity(path));
    row(name, `${base.ms} ms`, `${id.ms} ms`, `${(id.ms / Math.max(1, base.ms)).toFixed(3)}x`, `${(id.read / MiB).toFixed(1)} MiB`);
  }
  console.log('');
  row('first push of data.img', 'time', 'bytes sent', 'read (+children)', '');
  for (const device of [local, sshd.device]) {
    const root = join(work, `repo-${device.name}`);
    await fs.mkdir(root, { recursive: true });
    const session = await openSession(device, root);
    try {
      for (const [name, path] of disks) {
        const dep = { task: 'sql:data-disk', outputHash: 'x', files: { 'data.img': { sha256: 'f'.repeat(64), size: SIZE, path } } };
        const { ctx } = fakeContext({ step: pushDataDisk, service: testService(), device, session, root, deps: [dep] });
        await session.run(`rm -f ${session.serviceDir('sql')}/data.img`);
        const r = await timed(() => pushDataDisk.run!(ctx));
        row(`${device.transport.padEnd(5)} ${name}`, `${r.ms} ms`, `${((r.v?.bytes ?? 0) / MiB).toFixed(1)} MiB`, `${(r.read / MiB).toFixed(1)} MiB`, '');
      }
    } finally {
      await session.close();
    }
  }
} finally {
  await sshd.cleanup();
  await fs.rm(work, { recursive: true, force: true });
}
