// The config as a user writes it: imports of sibling files, paths relative to itself, and every broken setup caught at load (exit 3).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkout, repo, sovereign } from './support/cli.ts';

const realConfig = readFileSync(join(repo, 'sovereign.config.ts'), 'utf8');
const root = checkout('sovereign-config-');
const run = (args: string[]) => sovereign(args, { cwd: root });
const withConfig = async (text: string, args = ['run', 'sql:build', '--dry-run']) => {
  writeFileSync(join(root, 'sovereign.config.ts'), text);
  return run(args);
};
/** The real config with one edit applied to its text. */
const edited = (from: string | RegExp, to: string) => {
  const text = realConfig.replace(from, to);
  assert.is.not(text, realConfig, `edit applies: ${from}`);
  return text;
};

test('the config imports a sibling file and reads files relative to itself (import.meta.url and __dirname)', async () => {
  writeFileSync(join(root, 'sovereign.shared.ts'), `import { readFileSync } from 'node:fs';\nexport const sqlName = readFileSync(new URL('./sql-name.txt', import.meta.url), 'utf8').trim();\n`);
  writeFileSync(join(root, 'sql-name.txt'), 'PostgreSQL from a file\n');
  writeFileSync(join(root, 'forge-name.txt'), 'Forgejo via dirname\n');
  const text = `import { readFileSync } from 'node:fs';\nimport { join } from 'node:path';\nimport { sqlName } from './sovereign.shared.ts';\n`
    + edited("displayName: 'PostgreSQL'", 'displayName: sqlName').replace("displayName: 'Forgejo'", "displayName: readFileSync(join(__dirname, 'forge-name.txt'), 'utf8').trim()");
  const r = await withConfig(text, ['status', '--json']);
  assert.is(r.code, 0, r.stderr);
  const out = JSON.stringify(JSON.parse(r.stdout).tasks.map((t: { output?: string[] }) => t.output));
  assert.match(out, /PostgreSQL from a file: not running/);
  assert.match(out, /Forgejo via dirname: not running/);
});

test('an unchanged config loads its last bundle; an edited import, or a new file an import now finds, is bundled again', async () => {
  const displayOf = async () => {
    const r = await run(['status', '--json']);
    assert.is(r.code, 0, r.stderr);
    return /(named|edited) in [jt]s(?=: not running)/.exec(JSON.stringify(JSON.parse(r.stdout).tasks.map((t: { output?: string[] }) => t.output)))?.[0];
  };
  writeFileSync(join(root, 'naming.js'), "export const sqlName = 'named in js';\n");
  writeFileSync(join(root, 'sovereign.config.ts'), `import { sqlName } from './naming';\n${edited("displayName: 'PostgreSQL'", 'displayName: sqlName')}`);
  assert.is(await displayOf(), 'named in js');
  assert.is(await displayOf(), 'named in js', 'the cached bundle');
  writeFileSync(join(root, 'naming.js'), "export const sqlName = 'edited in js';\n");
  assert.is(await displayOf(), 'edited in js', 'an imported file edited');
  writeFileSync(join(root, 'naming.ts'), "export const sqlName: string = 'named in ts';\n");
  assert.is(await displayOf(), 'named in ts', './naming now resolves to the new naming.ts');
  rmSync(join(root, 'naming.ts'));
  rmSync(join(root, 'naming.js'));
});

test('one compiled config at a time, not one per edit', async () => {
  for (const memory of [1100, 1200, 1300]) assert.is((await withConfig(edited('memory: 1024', `memory: ${memory}`))).code, 0);
  assert.is(readdirSync(join(root, '.sovereign', 'config')).filter((f) => f.endsWith('.mjs')).length, 1);
});

const broken: [string, string, RegExp][] = [
  ['two services share a guestIp', edited("guestIp: '192.168.100.3'", "guestIp: '192.168.100.2'"), /services\.forge\.guestIp: 192\.168\.100\.2 is also services\.sql\.guestIp/],
  ['a port listed twice', edited('ports: [5432]', 'ports: [5432, 5432]'), /services\.sql\.ports: lists 5432 more than once/],
  ['a dependsOn cycle', edited("secrets: ['POSTGRES_PASSWORD',", "dependsOn: ['forge'], secrets: ['POSTGRES_PASSWORD',"), /dependsOn: forms a cycle: (sql -> forge -> sql|forge -> sql -> forge)/],
  ['a dir that does not exist', edited("displayName: 'PostgreSQL',", "displayName: 'PostgreSQL', dir: 'vm/nosuch',"), /services\.sql\.dir: folder 'vm\/nosuch' does not exist/],
  ['rootfsSize as a bare number', edited("displayName: 'PostgreSQL',", "displayName: 'PostgreSQL', rootfsSize: 512 as never,"), /services\.sql\.rootfsSize: is not a size with a unit: 512.*'512M'/],
  ['rootfsSize as a string without unit', edited("displayName: 'PostgreSQL',", "displayName: 'PostgreSQL', rootfsSize: '512',"), /services\.sql\.rootfsSize: is not a size with a unit/],
  ['a device dns that is not an address', edited("phone: { transport: 'adb', hypervisor: 'crosvm', arch: 'aarch64' }", "phone: { transport: 'adb', hypervisor: 'crosvm', arch: 'aarch64', dns: 'dns.google' }"), /devices\.phone\.dns: must be one to three IPv4 or IPv6 addresses, got "dns\.google" \(hint: e\.g\. dns: '8\.8\.8\.8'/],
  ['a default export that is not defineConfig', "export default 42;\n", /default export must be defineConfig\(\{\.\.\.\}\), got number/],
];
for (const [name, text, message] of broken) {
  test(`refused at load with exit 3, naming the file and field: ${name}`, async () => {
    const r = await withConfig(text);
    assert.is(r.code, 3, r.stderr);
    assert.match(r.stderr, /sovereign\.config\.ts/);
    assert.match(r.stderr, message);
  });
}

test('a default export that is a Promise of the config is awaited', async () => {
  const r = await withConfig(realConfig.replace('export default defineConfig(', 'export default Promise.resolve().then(() => defineConfig(').replace(/\}\);\s*$/, '}));\n'));
  assert.is(r.code, 0, r.stderr);
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
