// Keys: each declared input changes the key; unrelated edits (another service's config) do not.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, promises as fs, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyOf, keyParts, diffParts } from '../../lib/key.ts';
import { canonicalJson, StatCache } from '../../lib/hash.ts';
import { createHash } from 'node:crypto';
import { resolveConfig } from '../../lib/config.ts';
import type { KeyInputs } from '../../lib/task.ts';

const root = mkdtempSync(join(tmpdir(), 'sovereign-keys-'));
mkdirSync(join(root, 'vm/x'), { recursive: true });
writeFileSync(join(root, 'vm/x/init.sh'), 'echo hi\n');
writeFileSync(join(root, 'vm/x/Dockerfile'), 'FROM scratch\n');
writeFileSync(join(root, 'vm/x/.dockerignore'), 'notes.txt\n');
writeFileSync(join(root, 'vm/x/notes.txt'), 'ignored\n');

const src = () => ({ root, stat: new StatCache(), toolMemo: {} });
const task = { stepName: 'rootfs', version: 1, kind: 'artifact' };
const inputs = (): KeyInputs => ({ config: { size: 512 }, files: [{ file: 'vm/x/init.sh' }, { dir: 'vm/x', ignoreFile: '.dockerignore' }] });
const key = async (i: KeyInputs = inputs(), deps: Record<string, string> = { 'x:image': 'aaa' }, t = task) => keyOf(await keyParts(t, i, deps, src()));

test('canonical JSON: keys sorted at every level, integer-like keys first; flat string objects (key parts) give the same bytes', () => {
  assert.is(canonicalJson({ b: '1', a: '"q"', 10: 'x', 2: 'y' }), '{"2":"y","10":"x","a":"\\"q\\"","b":"1"}');
  assert.is(canonicalJson(JSON.parse('{"__proto__":"p","a":"b"}')), '{"__proto__":"p","a":"b"}');
  assert.is(canonicalJson({ z: { b: 1, a: [{ d: 'x', c: null }] }, a: 'k', u: undefined }), '{"a":"k","z":{"a":[{"c":null,"d":"x"}],"b":1}}');
  assert.is(canonicalJson({ a: undefined, b: {}, c: [], d: { e: undefined } }), '{"b":{},"c":[],"d":{}}', 'skipped values leave no stray comma');
  // Keys made before any of this stay valid: the key is the sha256 of exactly these bytes.
  assert.is(keyOf({ step: 'x@1', schema: '2' }), createHash('sha256').update('{"schema":"2","step":"x@1"}').digest('hex'));
});

test('same inputs, same key; stable across calls', async () => {
  assert.is(await key(), await key());
});

test('each declared input changes the key', async () => {
  const base = await key();
  assert.is.not(await key({ ...inputs(), config: { size: 1024 } }), base, 'config field');
  assert.is.not(await key(inputs(), { 'x:image': 'bbb' }), base, 'dependency output hash');
  assert.is.not(await key(inputs(), undefined, { ...task, version: 2 }), base, 'step version');
  await fs.writeFile(join(root, 'vm/x/init.sh'), 'echo changed\n');
  assert.is.not(await key(), base, 'input file');
  await fs.writeFile(join(root, 'vm/x/init.sh'), 'echo hi\n');
  assert.is(await key(), base, 'back to the same content, back to the same key');
  await fs.writeFile(join(root, 'vm/x/Dockerfile'), 'FROM scratch\nRUN true\n');
  assert.is.not(await key(), base, 'build context file');
  await fs.writeFile(join(root, 'vm/x/Dockerfile'), 'FROM scratch\n');
});

test('files excluded by .dockerignore do not change the key', async () => {
  const base = await key();
  await fs.writeFile(join(root, 'vm/x/notes.txt'), 'edited\n');
  assert.is(await key(), base);
});

test('a .dockerignore exception inside an ignored folder still counts', async () => {
  const ctx = mkdtempSync(join(tmpdir(), 'sovereign-ctx-'));
  mkdirSync(join(ctx, 'files'));
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY files/keep.txt /\n');
  writeFileSync(join(ctx, '.dockerignore'), '*\n!Dockerfile\n!files/keep.txt\n');
  writeFileSync(join(ctx, 'files/keep.txt'), 'one\n');
  writeFileSync(join(ctx, 'files/other.txt'), 'ignored\n');
  const { hashDir } = await import('../../lib/hash.ts');
  const h = () => hashDir(ctx, new StatCache(), '.dockerignore');
  const before = await h();
  writeFileSync(join(ctx, 'files/other.txt'), 'still ignored\n');
  assert.is(await h(), before, 'an ignored file does not count');
  writeFileSync(join(ctx, 'files/keep.txt'), 'two\n');
  assert.is.not(await h(), before, 'the exception does');
  await fs.rm(ctx, { recursive: true });
});

test('tool identity is part of the key when declared', async () => {
  const parts = await keyParts(task, { ...inputs(), tools: ['mke2fs'] }, {}, src());
  assert.ok(parts['tool:mke2fs'] && parts['tool:mke2fs'] !== 'missing', parts['tool:mke2fs']);
});

test('keys hold no absolute paths: another checkout gives the same key', async () => {
  const other = mkdtempSync(join(tmpdir(), 'sovereign-keys-other-'));
  await fs.cp(join(root, 'vm'), join(other, 'vm'), { recursive: true });
  const a = keyOf(await keyParts(task, inputs(), {}, src()));
  const b = keyOf(await keyParts(task, inputs(), {}, { root: other, stat: new StatCache(), toolMemo: {} }));
  assert.is(a, b);
  await fs.rm(other, { recursive: true });
});

test('diffParts names what changed', async () => {
  const a = await keyParts(task, inputs(), { 'x:image': '1' }, src());
  const b = await keyParts(task, { ...inputs(), config: { size: 2 } }, { 'x:image': '2' }, src());
  assert.equal(diffParts(a, b).sort(), ["config field 'size'", 'dep:x:image']);
});

/** The key of every step of sql, with the real steps, on `device`, under the raw config `raw`. */
async function sqlKeys(raw: unknown, device: string): Promise<Map<string, string>> {
  const { steps } = await import('../../tasks/index.ts');
  const r = resolveConfig(raw, 'sovereign.config.ts');
  if (!r.ok) throw r.error;
  const repo = join(import.meta.dirname, '..', '..');
  const dev = r.value.devices.get(device)!;
  const keys = new Map<string, string>();
  for (const [name, step] of steps) {
    if (!step.inputs) continue;
    const i = await step.inputs({ service: r.value.services.get('sql')!, config: r.value, device: dev });
    keys.set(name, keyOf(await keyParts({ stepName: name, version: step.version, kind: step.kind, device: dev }, i, {}, { root: repo, stat: new StatCache(), toolMemo: {} })));
  }
  return keys;
}

test('editing vault\'s config entry changes no key of sql (real steps and config)', async () => {
  const { default: raw } = await loadRealConfig();
  const edited = structuredClone(raw) as { services: Record<string, Record<string, unknown>> };
  edited.services.vault.memory = 2048;
  edited.services.vault.displayName = 'Vault (edited)';
  assert.equal(await sqlKeys(edited, 'local'), await sqlKeys(raw, 'local'));
});

test("a device's dns changes the start-script key and no other (real steps and config)", async () => {
  const { default: raw } = await loadRealConfig();
  const edited = structuredClone(raw) as { devices: Record<string, Record<string, unknown>> };
  edited.devices.phone.dns = ['1.1.1.1'];
  const [k1, k2] = [await sqlKeys(raw, 'phone'), await sqlKeys(edited, 'phone')];
  assert.equal([...k1.keys()].filter((name) => k1.get(name) !== k2.get(name)), ['start-script']);
});

async function loadRealConfig(): Promise<{ default: unknown }> {
  // The real sovereign.config.ts, transpiled the way the CLI does it.
  const { transform } = await import('esbuild');
  const src = await fs.readFile(join(import.meta.dirname, '..', '..', 'sovereign.config.ts'), 'utf8');
  const out = await transform(src.replace(/from 'sovereign'/, "from '../../lib/config.ts'"), { loader: 'ts', format: 'esm' });
  const file = join(import.meta.dirname, `.config-${process.pid}.mts`);
  await fs.writeFile(file, out.code);
  try { return await import(file); } finally { await fs.rm(file); }
}

test.after(() => fs.rm(root, { recursive: true, force: true }));
test.run();
