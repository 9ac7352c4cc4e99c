// No docker daemon: the image step fails with one clear error (exit 4) saying how to start one; nothing is recorded.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkout, sovereign } from '../support/cli.ts';

test('an unreachable docker daemon is one clear environment error with a hint', async () => {
  const root = checkout('sovereign-nodaemon-', `import { defineConfig } from 'sovereign';
export default defineConfig({ services: { tiny: { displayName: 'Tiny', guestIp: '10.0.0.2', ports: [], readyMarker: 'ready', kernel: { path: 'kernel' } } } });
`);
  mkdirSync(join(root, 'vm/tiny'), { recursive: true });
  writeFileSync(join(root, 'vm/tiny/Dockerfile'), 'FROM scratch\nCOPY init.sh /sbin/init\n');
  writeFileSync(join(root, 'vm/tiny/init.sh'), '#!/bin/sh\necho ready\n');
  const r = await sovereign(['run', 'tiny:image'], { cwd: root, env: { DOCKER_HOST: `unix://${join(root, 'no-such.sock')}` } });
  assert.is(r.code, 4, 'exit code 4: the environment is not ready');
  assert.match(r.stdout, /tiny:image failed/);
  assert.match(r.stdout, /cannot reach the docker daemon at DOCKER_HOST=unix:\/\//);
  assert.match(r.stdout, /hint: start it \(`sudo systemctl start docker`/);
  assert.is((r.stdout.match(/cannot reach the docker daemon/g) ?? []).length, 1, 'said once');
  const again = await sovereign(['run', 'tiny:image', '--dry-run', '--json'], { cwd: root });
  assert.is(JSON.parse(again.stdout).tasks.find((t: { task: string }) => t.task === 'tiny:image').outcome, 'would-run', 'nothing recorded');
  rmSync(root, { recursive: true, force: true });
});

test.run();
