// Mistakes a new user makes on the command line: each gets the right exit code and a hint that leads somewhere.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { checkout, sovereign } from './support/cli.ts';

const root = checkout('sovereign-hints-');
mkdirSync(join(root, 'a-folder'));
const cases: [string[], number, RegExp][] = [
  [['run', 'sql:build', '--dryrun'], 2, /did you mean --dry-run\?/],
  [['cache', 'gc', '--max', '5G'], 2, /did you mean --max-size\?.*sovereign cache --help/],
  [['graph', 'build', '--frmat', 'dot'], 2, /did you mean --format\?.*sovereign graph --help/],
  [['status', '--nosuch'], 2, /see sovereign status --help/],
  [['logs', '--sqll'], 2, /did you mean --sql\?.*sovereign logs --help/],
  [['why', 'sql:build', '--nosuch'], 2, /see sovereign why --help/],
  [['hash', 'build', '--devce', 'local'], 2, /did you mean --device\?.*sovereign hash --help/],
  [['preflight', '--nosuch'], 2, /see sovereign preflight --help/],
  [['autostart', '--enabel'], 2, /did you mean --enable\?.*sovereign autostart --help/],
  [['run', 'build', '--dry'], 2, /use --dry-run/],
  [['run', 'build', '--graph'], 2, /sovereign graph <targets>/],
  [['run', 'build', '--summarize'], 2, /use --summary FILE/],
  [['deploy', 'sql:deploy'], 2, /hint: sovereign run sql:deploy/],
  [['run', 'sql:status', '--summary', 'a-folder'], 4, /EISDIR on \/\S+\/a-folder: [^]*hint: a folder is where a file belongs/],
];

test('wrong flags and words: exit code and a hint that names the fix', async () => {
  const results = await Promise.all(cases.map(([args]) => sovereign(args, { cwd: root })));
  for (const [i, [args, code, hint]] of cases.entries()) {
    assert.is(results[i].code, code, `${args.join(' ')}: ${results[i].stderr}`);
    assert.match(results[i].stderr, hint, args.join(' '));
  }
});

test('-V, version and run --version print the version', async () => {
  for (const args of [['-V'], ['version'], ['run', '--version']]) {
    const r = await sovereign(args, { cwd: root });
    assert.is(r.code, 0, args.join(' '));
    assert.match(r.stdout, /^sovereign \d+\.\d+\.\d+/);
  }
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
