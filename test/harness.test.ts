// The test runner itself: a failing test always shows its name and its error, whatever it threw.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repo } from './support/cli.ts';

test('a test throwing a UserError with details prints its name, message and details, and counts as failed', () => {
  const fixture = join(repo, 'test', 'fixtures', 'harness', 'user-error.test.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'test', 'run.ts'), fixture], { cwd: repo, encoding: 'utf8' });
  const out = r.stdout + r.stderr;
  assert.match(out, /a step that fails with details/);
  assert.match(out, /the fixture failed on purpose/);
  assert.match(out, /second detail line/);
  assert.match(out, /0 passed, 1 failed/);
  assert.is(r.status, 1);
});

test.run();
