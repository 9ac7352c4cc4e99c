// sql:build as an ordinary user: mmdebstrap --mode=unshare for the base, a docker daemon reached as a member of
// its socket's group, no root anywhere. This test runs as root only to make and remove that user; the build is real
// (a bookworm base from the mirror, the sql image, rootfs.img, the kernel package, the data disk): minutes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { exec } from '../../lib/exec.ts';
import { SUBID_COUNT, subIds } from '../../lib/build/rootless.ts';
import { checkout, repo, sharedPackage, sovereign } from '../support/cli.ts';
import { startDockerd } from '../support/dockerd.ts';
import { chownTree, notOwnedBy, throwawayName, throwawayUser } from '../support/throwaway-user.ts';
import { ARCHES, hostArch } from '../../lib/arch.ts';

const tail = (text: string, n = 30) => text.trim().split('\n').slice(-n).join('\n');

test('rootless: a user without subordinate ids gets exit 4 naming the /etc/subuid line to add; preflight says it, and names a refused socket\'s group', async () => {
  assert.is(process.getuid?.(), 0, 'this test runs as root: it runs sovereign as nobody');
  const nobody = { name: 'nobody', uid: 65534, gid: 65534 };
  const ranges = ['/etc/subuid', '/etc/subgid'].map((f) => { try { return readFileSync(f, 'utf8'); } catch { return ''; } });
  assert.ok(ranges.every((t) => subIds(t, nobody) === 0), 'nobody has no subordinate ids here (the premise of this test)');
  const pkg = await sharedPackage();
  const root = checkout('sovereign-no-subids-', undefined, pkg.dir);
  // A socket only its group may use, as a docker daemon's: nobody's client is refused before any daemon answers.
  const group = throwawayName('socket');
  await exec('groupadd', ['--system', group]);
  const server = createServer();
  try {
    await chownTree(root, nobody);
    const socket = join(root, 'docker.sock');
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    await exec('chown', [`root:${group}`, socket]);
    await fs.chmod(socket, 0o660);
    const r = await sovereign(['run', 'sql:base'], { cwd: root, user: nobody, bin: pkg.bin });
    assert.is(r.code, 4, `exit 4 (environment), got ${r.code}:\n${tail(r.stdout + r.stderr)}`);
    assert.match(r.stdout + r.stderr, /65536 subordinate ids for nobody in \/etc\/subuid and \/etc\/subgid/);
    assert.match(r.stdout + r.stderr, /add the line nobody:\d+:65536 to \/etc\/subuid and \/etc\/subgid/);
    const p = await sovereign(['preflight', '--json'], { cwd: root, user: nobody, bin: pkg.bin, env: { DOCKER_HOST: `unix://${socket}` } });
    const checks = JSON.parse(p.stdout) as Array<{ name: string; ok: boolean; fix?: string }>;
    const base = checks.find((c) => c.name.startsWith(`base image for ${ARCHES[hostArch() ?? 'x86_64'].deb}`));
    assert.ok(base, `preflight lists the base check:\n${p.stdout}`);
    assert.is(base.ok, false);
    assert.match(base.name, /mmdebstrap --mode=unshare/);
    assert.match(base.fix ?? '', /nobody:\d+:65536/);
    const daemon = checks.find((c) => c.name === 'docker daemon reachable');
    assert.is(daemon?.ok, false);
    assert.match(daemon?.fix ?? '', new RegExp(`nobody may not use its socket ${socket}: add nobody to the group ${group}`));
  } finally {
    server.close();
    await exec('groupdel', [group], { nothrow: true });
    await fs.rm(root, { recursive: true, force: true });
    await pkg.remove();
  }
});

test('rootless: an ordinary user in the docker socket\'s group runs sql:build (mmdebstrap --mode=unshare) and owns all it made', async () => {
  assert.is(process.getuid?.(), 0, 'this test runs as root: it makes and removes a user');
  const group = throwawayName('docker');
  await exec('groupadd', ['--system', group]);
  const cleanup: Array<() => Promise<unknown>> = [() => exec('groupdel', [group], { nothrow: true })];
  try {
    const user = await throwawayUser('rootless', { groups: [group] });
    cleanup.unshift(user.remove);
    // Its subordinate ids come the way the README says: setup-host.sh run through sudo by that user.
    await exec(join(repo, 'scripts/setup-host.sh'), ['--no-daemon'], { env: { ...process.env, SUDO_USER: user.name } });
    for (const f of ['/etc/subuid', '/etc/subgid']) assert.is(subIds(await fs.readFile(f, 'utf8'), user), SUBID_COUNT, `setup-host.sh gave ${user.name} ${SUBID_COUNT} ids in ${f}`);
    const dockerd = await startDockerd({ group });
    cleanup.unshift(dockerd.stop);
    const pkg = await sharedPackage();
    cleanup.unshift(pkg.remove);
    const root = checkout('sovereign-rootless-', undefined, pkg.dir);
    cleanup.unshift(() => fs.rm(root, { recursive: true, force: true }));
    await chownTree(root, user);

    const started = Date.now();
    const r = await sovereign(['run', 'sql:build', '--verbose'], { cwd: root, user, bin: pkg.bin, env: { DOCKER_HOST: dockerd.host } });
    const output = r.stdout + r.stderr;
    assert.is(r.code, 0, `sql:build as ${user.name} failed (exit ${r.code}):\n${tail(output)}`);
    const summary = JSON.parse(await fs.readFile(join(root, '.sovereign/runs/last.json'), 'utf8')) as { tasks: Array<{ task: string; outcome: string; durationMs?: number }> };
    const base = summary.tasks.find((t) => t.task === 'sql:base');
    assert.is(base?.outcome, 'ran');
    console.log(`  sql:build as ${user.name} (cold): ${((Date.now() - started) / 1000).toFixed(1)}s, its base step ${((base?.durationMs ?? 0) / 1000).toFixed(1)}s`);

    // The base: mmdebstrap ran unshared as the user (its tar lives only in the step's folder until imported).
    assert.match(output, new RegExp(`mmdebstrap --mode=unshare as ${user.name}`));
    const images = await exec('docker', ['image', 'ls', '--format', '{{.Repository}}', 'sovereign-base-sql'], { env: dockerd.env });
    assert.match(images.stdout, /sovereign-base-sql/, 'the base image is in the daemon');
    // The artifacts, and everything else the run wrote, are the user's: nothing ran as root.
    const rootfs = await fs.stat(join(root, '.sovereign/out/sql/rootfs.img'));
    assert.is(rootfs.uid, user.uid, 'rootfs.img belongs to the user');
    assert.ok(rootfs.size > 0);
    assert.equal(await notOwnedBy(join(root, '.sovereign'), user.uid), [], `.sovereign holds only ${user.name}'s files`);
    // mmdebstrap's temp folder and the step's work folders are gone.
    const left = (await exec('find', [tmpdir(), '-maxdepth', '1', '-user', String(user.uid), '!', '-path', root])).stdout.trim();
    assert.is(left, '', `nothing of ${user.name}'s is left in ${tmpdir()} but its checkout`);
  } finally {
    for (const step of cleanup) await step().catch((e: Error) => console.error(`  cleanup: ${e.message}`));
  }
});

test.run();
