// The shipped type declarations: a project that depends on sovereign type-checks its config with `tsc --init` defaults.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repo } from './support/cli.ts';

const tsc = join(repo, 'node_modules', '.bin', 'tsc');
const project = mkdtempSync(join(tmpdir(), 'sovereign-consumer-'));

test('a consumer project type-checks its sovereign.config.ts against the declarations in package.json', () => {
  // What `npm install` (prepare) ships: dist/types, named by package.json's `types`.
  const types = spawnSync(tsc, ['-p', 'tsconfig.types.json'], { cwd: repo, encoding: 'utf8' });
  assert.is(types.status, 0, types.stdout + types.stderr);
  mkdirSync(join(project, 'node_modules'));
  symlinkSync(repo, join(project, 'node_modules', 'sovereign'));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: { sovereign: '*' } }));
  assert.is(spawnSync(tsc, ['--init'], { cwd: project }).status, 0);
  copyFileSync(join(repo, 'sovereign.config.ts'), join(project, 'sovereign.config.ts'));
  writeFileSync(join(project, 'wrong.ts'), "import { defineConfig } from 'sovereign';\nexport default defineConfig({ services: { sql: { displayName: 1 } } });\n");
  const r = spawnSync(tsc, ['--noEmit', '-p', '.'], { cwd: project, encoding: 'utf8' });
  const errors = r.stdout.split('\n').filter((l) => l.includes('error TS'));
  // The one error is the consumer's own mistake: types reach the consumer, and nothing inside sovereign fails.
  assert.is(errors.length, 1, r.stdout);
  assert.match(errors[0], /^wrong\.ts/);
});

test('the declarations type-check with skipLibCheck off (tsc --init turns it on) and with no tsconfig at all (tsc\'s own defaults)', () => {
  const init = readFileSync(join(project, 'tsconfig.json'), 'utf8');
  assert.match(init, /"skipLibCheck": true/);
  writeFileSync(join(project, 'tsconfig.json'), init.replace('"skipLibCheck": true', '"skipLibCheck": false'));
  const strict = spawnSync(tsc, ['--noEmit', '-p', '.'], { cwd: project, encoding: 'utf8' });
  assert.equal(strict.stdout.split('\n').filter((l) => l.includes('error TS')).map((l) => l.split('(')[0]), ['wrong.ts'], strict.stdout);
  // No tsconfig: tsc's own defaults (node10 resolution reads package.json's top-level `types`; every lib checked).
  rmSync(join(project, 'tsconfig.json'));
  const bare = spawnSync(tsc, ['--noEmit', 'sovereign.config.ts'], { cwd: project, encoding: 'utf8' });
  assert.is(bare.status, 0, bare.stdout);
});

test.after(() => rmSync(project, { recursive: true, force: true }));
test.run();
