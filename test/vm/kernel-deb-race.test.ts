// A `{ deb }` kernel fetch (real apt-get download, as root) while a second local user (nobody) races to plant links
// and swap the package in every sovereign-kernel-* folder: nothing is redirected, and a .deb apt's index does not know is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchKernel } from '../../lib/vm/kernel.ts';
import { UserError } from '../../lib/error.ts';

let dir: string;
let attacker: ChildProcess | undefined;
let said = '';

test.before(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), `sov-debrace-${process.pid}-`));
  await fs.chmod(dir, 0o755);
});
test.after(async () => {
  attacker?.kill();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** nobody, in a loop: a link `x` (dpkg -x's target) and `download` to its own folder, and any .deb replaced by its own. */
async function startAttacker(sentinel: string): Promise<void> {
  const fake = join(sentinel, 'fake.deb');
  await fs.writeFile(fake, 'not a package\n');
  const script = `while :; do for d in "${tmpdir()}"/sovereign-kernel-*; do [ -d "$d" ] || continue
    ln -s "${sentinel}" "$d/x" 2>/dev/null && echo "planted $d/x"
    ln -s "${sentinel}" "$d/download" 2>/dev/null && echo "planted $d/download"
    for f in "$d"/*.deb "$d"/download/*.deb; do [ -f "$f" ] && cp "${fake}" "$f.n" 2>/dev/null && mv -f "$f.n" "$f" 2>/dev/null && echo "swapped $f"; done
  done; sleep 0.01; done`;
  attacker = spawn('runuser', ['-u', 'nobody', '--', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  attacker.stdout!.on('data', (c) => { said += c; });
  attacker.stderr!.on('data', (c) => { said += c; });
}

test('a second user racing the fetch folder cannot redirect the extraction or swap the package', async () => {
  const sentinel = join(dir, 'attacker');
  await fs.mkdir(sentinel, { mode: 0o777 });
  await fs.chmod(sentinel, 0o777);
  await fs.chown(sentinel, 65534, 65534);
  await startAttacker(sentinel);
  const dest = join(dir, 'out', 'kernel');
  const err = await fetchKernel({ deb: 'linux-image-cloud-amd64' }, { root: dir, dest, modulesDest: join(dir, 'out', 'modules.tar') })
    .then(() => undefined, (e: unknown) => e);
  attacker!.kill();
  assert.is(err, undefined, `the fetch failed: ${String(err)}\nattacker: ${said}`);
  assert.equal((await fs.readdir(sentinel)).filter((n) => n !== 'fake.deb'), [], `nothing written into the attacker's folder; attacker: ${said}`);
  assert.not.match(said, /planted|swapped/, said);
  assert.ok((await fs.stat(dest)).size > 1_000_000, 'a real kernel');
});

test('a downloaded .deb that apt\'s index does not know is refused before extraction', async () => {
  // Stand-in: an apt-cache whose `show` lists another checksum (as if the download had been swapped); apt-get is real.
  const bin = join(dir, 'bin');
  await fs.mkdir(bin);
  await fs.writeFile(join(bin, 'apt-cache'), `#!/bin/sh\n# apt options (-o ...) come first, then the command and the package\ncase " $* " in *" show "*) for p; do :; done; echo "Package: $p"; echo "SHA256: ${'0'.repeat(64)}"; exit 0 ;; esac\nexec /usr/bin/apt-cache "$@"\n`, { mode: 0o755 });
  const path = process.env.PATH;
  process.env.PATH = `${bin}:${path}`;
  try {
    const dest = join(dir, 'bad', 'kernel');
    const err = await fetchKernel({ deb: 'linux-image-cloud-amd64' }, { root: dir, dest }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    assert.match((err as Error).message, "does not match apt's index");
    await assert.not.ok(await fs.stat(dest).catch(() => undefined), 'no kernel stored');
  } finally {
    process.env.PATH = path;
  }
});

test.run();
