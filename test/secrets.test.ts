// .env parsing (never evaluated), per-service key selection, and the padded secrets file.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UserError } from '../lib/error.ts';
import { ensureSecrets, parseEnv, readEnvFile, renderSecretsFile, secretsFor } from '../lib/secrets.ts';
import { testService } from './support/device-context.ts';

const env = (text: string) => Object.fromEntries(parseEnv(text));

test('KEY=VALUE, comments, blank lines, export, spaces around =', () => {
  assert.equal(env('# comment\n\nA=1\n  # indented comment\nexport B=two\nC = three \r\n'), { A: '1', B: 'two', C: 'three' });
});

test('= inside values, and the last assignment wins', () => {
  assert.equal(env('URL=postgres://u:p@h/db?sslmode=require&x=1\nTOKEN=abc==\nTOKEN=def=='), { URL: 'postgres://u:p@h/db?sslmode=require&x=1', TOKEN: 'def==' });
});

test('quotes: single literal, double with simple escapes, trailing comments', () => {
  assert.equal(env(`S='a "b" \\n $X'\nD="line\\nnext \\"q\\" \\\\ \\$HOME tab\\t"\nH="has # hash" # comment\nU=value # comment\nN=no#comment\nE=\nQ=''`), {
    S: 'a "b" \\n $X',
    D: 'line\nnext "q" \\ $HOME tab\t',
    H: 'has # hash',
    U: 'value',
    N: 'no#comment',
    E: '',
    Q: '',
  });
});

test('nothing is evaluated: $(...), backticks and ${VAR} stay text', async () => {
  const marker = join(tmpdir(), `sov-secrets-eval-${process.pid}`);
  const parsed = env(`A=$(touch ${marker})\nB=\`touch ${marker}\`\nC=\${HOME}\nD="$(touch ${marker})"`);
  assert.is(parsed.A, `$(touch ${marker})`);
  assert.is(parsed.B, `\`touch ${marker}\``);
  assert.is(parsed.C, '${HOME}');
  assert.is(parsed.D, `$(touch ${marker})`);
  assert.is(await fs.access(marker).then(() => true, () => false), false, 'no command ran');
});

test('malformed lines: an error with file and line, never the value', () => {
  for (const [text, line] of [['A=1\nnot a pair with SECRETVALUE\n', 2], ['A="unterminated SECRETVALUE', 1], ["B='x' SECRETVALUE", 1], ['1BAD=SECRETVALUE', 1]] as const) {
    try {
      parseEnv(text, 'repo/.env');
      assert.unreachable(`accepted: ${text}`);
    } catch (e) {
      assert.instance(e, UserError);
      assert.match((e as UserError).message, `repo/.env:${line}:`);
      assert.not.match((e as UserError).message, 'SECRETVALUE');
    }
  }
});

test('secretsFor: only the declared keys; a missing key names key, service and file', async () => {
  const dir = await fs.mkdtemp(join(tmpdir(), 'sov-secrets-'));
  try {
    const svc = testService(['DB_PASSWORD', 'API_TOKEN']);
    await fs.writeFile(join(dir, '.env'), 'DB_PASSWORD=pw\nAPI_TOKEN=tok\nTAILSCALE_API_KEY=not-for-this-vm\n');
    assert.equal(await secretsFor(svc, dir), { DB_PASSWORD: 'pw', API_TOKEN: 'tok' });
    assert.equal(await secretsFor(svc, await readEnvFile(join(dir, '.env'))), { DB_PASSWORD: 'pw', API_TOKEN: 'tok' });
    assert.equal(await secretsFor(testService([]), join(dir, 'nowhere')), {}, 'no keys declared: no .env needed');

    await fs.writeFile(join(dir, '.env'), 'DB_PASSWORD=pw\n');
    const e = await secretsFor(svc, dir).then(() => undefined, (x: unknown) => x as UserError);
    assert.instance(e, UserError);
    assert.match(e!.message, 'API_TOKEN');
    assert.match(e!.message, "'sql'");
    assert.match(e!.message, '.env');
    assert.match(e!.hint!, 'API_TOKEN=');
    assert.not.match(e!.message, 'DB_PASSWORD');

    await fs.rm(join(dir, '.env'));
    const gone = await secretsFor(svc, dir).then(() => undefined, (x: unknown) => x as UserError);
    assert.match(gone!.message, /does not exist/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('renderSecretsFile: KEY=VALUE lines padded with NUL to whole 4 KiB blocks; line breaks refused', () => {
  const one = renderSecretsFile({ A: 'x y', B: "q'uote" });
  assert.is(one.length, 4096);
  assert.is(one.subarray(0, 15).toString(), "A=x y\nB=q'uote\n");
  assert.ok(one.subarray(15).every((b) => b === 0));
  assert.is(renderSecretsFile({}).length, 4096, 'an empty file is still one block');
  assert.is(renderSecretsFile({ BIG: 'z'.repeat(5000) }).length, 8192);
  assert.throws(() => renderSecretsFile({ A: 'two\nlines' }), (e: Error) => e instanceof UserError && /A/.test(e.message) && !e.message.includes('two'));
});

test('missing declared keys are generated into .env (0600) on a real run, never on a dry run', async () => {
  const root = await fs.mkdtemp(join(tmpdir(), 'sovereign-gen-'));
  const svc = { ...testService(), name: 'sql', secrets: ['POSTGRES_PASSWORD', 'KEEP'] };
  await fs.writeFile(join(root, '.env'), 'KEEP=mine\n');
  const dry = await ensureSecrets(svc, root, false);
  assert.equal(dry.generated, []);
  assert.equal(dry.values, { KEEP: 'mine' });
  assert.is(await fs.readFile(join(root, '.env'), 'utf8'), 'KEEP=mine\n');
  const real = await ensureSecrets(svc, root, true);
  assert.equal(real.generated, ['POSTGRES_PASSWORD']);
  assert.is(real.values.KEEP, 'mine');
  assert.match(real.values.POSTGRES_PASSWORD, /^[A-Za-z0-9_-]{32}$/);
  assert.is((await fs.stat(join(root, '.env'))).mode & 0o777, 0o600);
  const again = await ensureSecrets(svc, root, true);
  assert.equal(again.generated, []);
  assert.is(again.values.POSTGRES_PASSWORD, real.values.POSTGRES_PASSWORD, 'generated once, then kept');
  await fs.rm(root, { recursive: true });
});

/** A repo whose forge declares TAILSCALE_AUTHKEY (a key only its owner can make), with `env` as its .env. */
async function forgeWithAuthKey(prefix: string, env: string) {
  const root = await fs.mkdtemp(join(tmpdir(), prefix));
  const svc = { ...testService(), name: 'forge', secrets: ['POSTGRES_FORGEJO_PASSWORD', 'TAILSCALE_AUTHKEY'] };
  await fs.writeFile(join(root, '.env'), env, { mode: 0o600 });
  return { root, svc };
}

test('a key only its owner can make (TAILSCALE_AUTHKEY) is never generated: a real run stops naming it and where to get one, writing nothing', async () => {
  const { root, svc } = await forgeWithAuthKey('sov-provided-', 'KEEP=mine\n');
  try {
    await ensureSecrets(svc, root, true);
    assert.unreachable('a missing TAILSCALE_AUTHKEY was accepted');
  } catch (e) {
    assert.instance(e, UserError);
    assert.is((e as UserError).code, 'environment');
    assert.match((e as UserError).message, /TAILSCALE_AUTHKEY \(declared by forge\) is not in .*\.env, and sovereign cannot make it/);
    assert.match((e as UserError).hint ?? '', /Tailscale admin console/);
  }
  assert.is(await fs.readFile(join(root, '.env'), 'utf8'), 'KEEP=mine\n', 'nothing generated, not even the password');
  await fs.appendFile(join(root, '.env'), 'TAILSCALE_AUTHKEY=tskey-auth-given\n');
  const r = await ensureSecrets(svc, root, true);
  assert.equal(r.generated, ['POSTGRES_FORGEJO_PASSWORD']);
  assert.is(r.values.TAILSCALE_AUTHKEY, 'tskey-auth-given');
  await fs.rm(root, { recursive: true });
});

test('a missing key only its owner can make stops a check and a dry run too (they read .env without generating)', async () => {
  // As on a device deployed before TAILSCALE_AUTHKEY was declared: every other key is there.
  const { root, svc } = await forgeWithAuthKey('sov-provided-check-', 'POSTGRES_FORGEJO_PASSWORD=pw\n');
  try {
    const got = await ensureSecrets(svc, root, false).then((r) => r, (e: unknown) => e);
    assert.instance(got, UserError, `without generating, a missing TAILSCALE_AUTHKEY was accepted: ${JSON.stringify(got)}`);
    assert.is((got as UserError).code, 'environment');
    assert.match((got as UserError).message, /TAILSCALE_AUTHKEY \(declared by forge\)/);
  } finally {
    await fs.rm(root, { recursive: true });
  }
});

test('a symlinked .env is written through: the link stays a link, its target gets the keys, no temp file is left', async () => {
  const root = await fs.mkdtemp(join(tmpdir(), 'sov-secrets-link-'));
  const vault = join(root, 'vault');
  await fs.mkdir(vault);
  await fs.writeFile(join(vault, 'sovereign.env'), 'KEEP=1\n', { mode: 0o600 });
  await fs.symlink(join(vault, 'sovereign.env'), join(root, '.env'));
  const svc = { ...testService(), name: 'sql', secrets: ['POSTGRES_PASSWORD'] };
  const r = await ensureSecrets(svc, root, true);
  assert.ok((await fs.lstat(join(root, '.env'))).isSymbolicLink(), '.env is still a symlink');
  const text = await fs.readFile(join(vault, 'sovereign.env'), 'utf8');
  assert.match(text, /^KEEP=1\n/);
  assert.match(text, `POSTGRES_PASSWORD=${r.values.POSTGRES_PASSWORD}`);
  assert.equal([...await fs.readdir(root), ...await fs.readdir(vault)].filter((n) => n.includes('tmp')), [], 'no temp file left');
  await fs.rm(root, { recursive: true });
});

test('a dangling .env link is written through too: the file it names is made (0600), the link stays', async () => {
  const root = await fs.mkdtemp(join(tmpdir(), 'sov-secrets-dangling-'));
  await fs.mkdir(join(root, 'vault'));
  await fs.symlink('vault/sovereign.env', join(root, '.env')); // relative, as ln -s usually makes it
  const r = await ensureSecrets({ ...testService(), name: 'sql', secrets: ['POSTGRES_PASSWORD'] }, root, true);
  assert.ok((await fs.lstat(join(root, '.env'))).isSymbolicLink(), '.env is still a symlink');
  assert.match(await fs.readFile(join(root, 'vault', 'sovereign.env'), 'utf8'), `POSTGRES_PASSWORD=${r.values.POSTGRES_PASSWORD}`);
  assert.is((await fs.stat(join(root, 'vault', 'sovereign.env'))).mode & 0o777, 0o600);
  await fs.rm(root, { recursive: true });
});

test('a link chain through a symlinked folder is followed as the kernel does: `..` is the real folder\'s parent', async () => {
  const root = await fs.mkdtemp(join(tmpdir(), 'sov-secrets-chain-'));
  // .env -> <root>/dots/app.env, dots -> real/sub, real/sub/app.env -> ../secrets/app.env: the file is real/secrets/app.env.
  for (const d of ['real/sub', 'real/secrets', 'secrets']) await fs.mkdir(join(root, d), { recursive: true });
  await fs.writeFile(join(root, 'real', 'secrets', 'app.env'), 'KEEP=1\n', { mode: 0o600 });
  await fs.symlink('../secrets/app.env', join(root, 'real', 'sub', 'app.env'));
  await fs.symlink(join(root, 'real', 'sub'), join(root, 'dots'));
  await fs.symlink(join(root, 'dots', 'app.env'), join(root, '.env'));
  const r = await ensureSecrets({ ...testService(), name: 'sql', secrets: ['POSTGRES_PASSWORD'] }, root, true);
  const text = await fs.readFile(join(root, 'real', 'secrets', 'app.env'), 'utf8');
  assert.match(text, /^KEEP=1\n/);
  assert.match(text, `POSTGRES_PASSWORD=${r.values.POSTGRES_PASSWORD}`);
  assert.equal(await fs.readdir(join(root, 'secrets')), [], 'nothing written where the link text alone points');
  await fs.rm(root, { recursive: true });
});

test('a .env link into a folder that does not exist (a drive not mounted) is refused, nothing written', async () => {
  const root = await fs.mkdtemp(join(tmpdir(), 'sov-secrets-unmounted-'));
  await fs.symlink(join(root, 'usb', 'sovereign.env'), join(root, '.env'));
  const got = await ensureSecrets({ ...testService(), name: 'sql', secrets: ['POSTGRES_PASSWORD'] }, root, true).catch((e) => e);
  assert.instance(got, UserError);
  assert.is((got as UserError).code, 'environment');
  assert.match((got as UserError).message, /links to .*usb\/sovereign\.env, but the folder .*usb does not exist/);
  assert.ok((await fs.lstat(join(root, '.env'))).isSymbolicLink(), '.env is still a symlink');
  assert.equal(await fs.readdir(root), ['.env'], 'nothing written');
  await fs.rm(root, { recursive: true });
});

test.run();
