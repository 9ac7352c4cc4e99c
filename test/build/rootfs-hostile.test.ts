// Hostile image tars (crafted here, no docker needed): a rootfs build never touches the host through the image's symlinks
// (device nodes placed in /dev, /etc/shadow's dates fixed).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
import { buildRootfs } from '../../lib/build/rootfs.ts';
import { UserError } from '../../lib/error.ts';
import { exec } from '../../lib/exec.ts';

let work: string;

test.before(async () => { work = await fs.mkdtemp(join(tmpdir(), `sov-hostile-${process.pid}-`)); });
test.after(async () => { if (work) await fs.rm(work, { recursive: true, force: true }); });

/** A host folder holding files named like device nodes: every one must survive the build. */
async function sentinel(name: string): Promise<string> {
  const dir = join(work, name);
  await fs.mkdir(dir, { recursive: true });
  for (const f of ['tun', 'console', 'null', 'zero', 'tty', 'random', 'urandom', 'vsock']) await fs.writeFile(join(dir, f), 'host data\n');
  await fs.mkdir(join(dir, 'net'));
  await fs.writeFile(join(dir, 'net', 'tun'), 'host data\n');
  return dir;
}

/** An image tar with `link` (a path inside the image) as a symlink to `target` (an absolute host path). */
async function craftedTar(name: string, link: string, target: string): Promise<string> {
  const src = join(work, `${name}-src`);
  await fs.mkdir(join(src, 'bin'), { recursive: true });
  await fs.writeFile(join(src, 'bin', 'sh'), '#!/bin/true\n');
  const parent = link.split('/').slice(0, -1).join('/');
  if (parent) await fs.mkdir(join(src, parent), { recursive: true });
  await fs.symlink(target, join(src, link));
  const file = join(work, `${name}.tar`);
  await tar.c({ file, cwd: src, portable: true }, ['bin', link.split('/')[0]]);
  return file;
}

async function buildFrom(name: string, tarFile: string): Promise<unknown> {
  const dir = join(work, `${name}-out`);
  await fs.mkdir(dir);
  const initSh = join(work, 'init.sh');
  await fs.writeFile(initSh, '#!/bin/sh\n');
  return buildRootfs({ tar: tarFile, out: join(dir, 'rootfs.img'), sizeBytes: 64 * 1024 * 1024, initSh, workDir: dir, seed: 's' })
    .then(() => undefined, (e: unknown) => e);
}

async function survived(dir: string): Promise<void> {
  for (const f of ['tun', 'console', 'null', 'zero', 'tty', 'random', 'urandom', 'vsock', 'net/tun']) {
    assert.ok(existsSync(join(dir, f)), `host file ${dir}/${f} survived`);
    assert.is(await fs.readFile(join(dir, f), 'utf8'), 'host data\n');
  }
}

/** Builds from a tar whose `link` points at a sentinel host folder (absolute, or relative climbing out): it survives, the error is clear. */
async function hostile(name: string, link: string, relative = false): Promise<void> {
  const host = await sentinel(`host-${name}`);
  const target = relative ? host.replace(/^\//, '../../../../../../../../') : host;
  const err = await buildFrom(name, await craftedTar(name, link, target));
  await survived(host);
  assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
  assert.match((err as Error).message, `/${link}`);
}

test('an image whose /dev/net links to a host folder: the host folder survives, a clear error', () => hostile('net', 'dev/net'));
test('an image whose /dev links to a host folder: the host folder survives, a clear error', () => hostile('dev', 'dev'));
test('a relative link out of the stage (/dev -> ../../..) is not followed either', () => hostile('rel', 'dev', true));

/** A host file shaped like /etc/shadow (a set "last change" day, which the build rewrites in the image's own). */
const SHADOW = 'root:$y$j9T$salt$hash:19000:0:99999:7:::\n';

test('an image whose /etc/shadow, or /etc, links to the host: the host file is never rewritten', async () => {
  for (const [name, link, target] of [['shadow', 'etc/shadow', 'shadow'], ['etcdir', 'etc', '']] as const) {
    const host = join(work, `host-${name}`);
    await fs.mkdir(host);
    await fs.writeFile(join(host, 'shadow'), SHADOW);
    const err = await buildFrom(name, await craftedTar(name, link, join(host, target)));
    assert.is(await fs.readFile(join(host, 'shadow'), 'utf8'), SHADOW, `${name}: the host's file is unchanged`);
    assert.is(err, undefined, `${name}: the build itself is fine (the link stays a link in the image): ${String(err)}`);
  }
});

test("an image's own /etc/shadow still gets the fixed day", async () => {
  const src = join(work, 'own-src');
  await fs.mkdir(join(src, 'etc'), { recursive: true });
  await fs.writeFile(join(src, 'etc', 'shadow'), SHADOW);
  const file = join(work, 'own.tar');
  await tar.c({ file, cwd: src, portable: true }, ['etc']);
  assert.is(await buildFrom('own', file), undefined);
  const r = await exec('debugfs', ['-R', 'cat /etc/shadow', join(work, 'own-out', 'rootfs.img')]);
  assert.match(r.stdout, /^root:[^:]*:\d+:/m);
  assert.not.match(r.stdout, ':19000:', 'the build day was replaced');
});

test.run();
