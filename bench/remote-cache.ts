// Benchmark: a 512 MiB disk-image-like blob up to and down from a real turborepo-remote-cache server, against a plain copy.
// Run: node --import tsx bench/remote-cache.ts   (BENCH_MIB=64 for a quick run)
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished, pipeline } from 'node:stream/promises';
import { RemoteStore } from '../lib/store/remote.ts';
import { startCacheServer } from '../test/support/cache-server.ts';

const MIB = 1024 * 1024;
const SIZE_MIB = Number(process.env.BENCH_MIB ?? 512);
const RSS_LIMIT = 200 * 1000 * 1000;

let peakRss = 0;
const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 20);

/** Rootfs-like content: alternating 1 MiB runs of zeros (free space) and random bytes (compressed files). */
async function makeImage(path: string): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  const zeros = Buffer.alloc(MIB);
  for (let i = 0; i < SIZE_MIB; i++) {
    const chunk = i % 2 === 0 ? zeros : randomBytes(MIB);
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  out.end();
  await finished(out);
  return hash.digest('hex');
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t = process.hrtime.bigint();
  const value = await fn();
  return { value, seconds: Number(process.hrtime.bigint() - t) / 1e9 };
}

const rate = (s: number) => `${(SIZE_MIB / s).toFixed(1)} MiB/s`;
const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;

const work = await fs.mkdtemp(join(tmpdir(), `sovereign-bench-${process.pid}-`));
const server = await startCacheServer();
try {
  const image = join(work, 'rootfs.img');
  const sha256 = await makeImage(image);
  await fs.mkdir(join(work, 'staging'));
  const warnings: string[] = [];
  const store = new RemoteStore({ url: server.url, token: server.token, team: 'bench', mode: 'read-write', tmpDir: join(work, 'staging'), onWarning: (m) => warnings.push(m) });

  const base = await timed(() => pipeline(createReadStream(image, { highWaterMark: MIB }), createWriteStream(join(work, 'copy.img'))));
  const up = await timed(() => store.putBlob(sha256, image));
  const stored = (await fs.stat(join(server.storagePath, 'bench', sha256))).size;
  const down = await timed(() => store.fetchBlob(sha256, SIZE_MIB * MIB, join(work, 'down.img')));
  clearInterval(sampler);
  const maxRss = Math.max(peakRss, process.resourceUsage().maxRSS * 1024);
  const serverHwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1];

  if (!up.value || !down.value) throw new Error(`transfer failed: ${warnings.join('; ')}`);
  console.log(`blob: ${SIZE_MIB} MiB (half zeros, half random), stored (gzip blocks, level 1) as ${mb(stored)}`);
  console.log(`baseline stream copy: ${base.seconds.toFixed(2)} s  ${rate(base.seconds)}`);
  console.log(`upload (HEAD + gzip to staging + PUT): ${up.seconds.toFixed(2)} s  ${rate(up.seconds)}  (${(base.seconds / up.seconds).toFixed(2)}x baseline)`);
  console.log(`download (GET + gunzip + sha256 verify): ${down.seconds.toFixed(2)} s  ${rate(down.seconds)}  (${(base.seconds / down.seconds).toFixed(2)}x baseline)`);
  console.log(`peak RSS of this process: ${mb(maxRss)} (target < ${mb(RSS_LIMIT)})${serverHwm ? `; server peak RSS: ${mb(Number(serverHwm) * 1024)}` : ''}`);
  if (maxRss >= RSS_LIMIT) { console.log('FAIL: peak RSS over target'); process.exitCode = 1; }
  else console.log('OK: memory stays flat');
} finally {
  clearInterval(sampler);
  await server.stop();
  await fs.rm(work, { recursive: true, force: true });
}
