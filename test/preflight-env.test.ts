// preflight's .env checks: a value the guest cannot receive is caught before a run, and each read error gets its own fix.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Config } from '../lib/config.ts';
import { UserError } from '../lib/error.ts';
import { envChecks } from '../lib/preflight.ts';
import { renderSecretsFile } from '../lib/secrets.ts';
import { testService } from './support/device-context.ts';

const config = { services: new Map([['sql', testService(['POSTGRES_PASSWORD'])]]) } as unknown as Config;
const root = mkdtempSync(join(tmpdir(), 'sov-preflight-env-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

test('a \\n escape in a declared value fails preflight, naming the key and never the value', async () => {
  writeFileSync(join(root, '.env'), 'POSTGRES_PASSWORD="hunter2\\nsecond-line"\n');
  const checks = await envChecks(config, { root });
  const bad = checks.find((c) => !c.ok);
  assert.ok(bad, JSON.stringify(checks));
  assert.match(bad!.detail, /POSTGRES_PASSWORD/);
  assert.match(bad!.fix ?? '', /one line/);
  assert.not.match(JSON.stringify(checks), /hunter2/);
});

test('the run itself refuses such a value as an environment error (exit 4), not a task failure', () => {
  try {
    renderSecretsFile({ POSTGRES_PASSWORD: 'a\nb' });
    assert.unreachable('renderSecretsFile accepted a line break');
  } catch (e) {
    assert.instance(e, UserError);
    assert.is((e as UserError).code, 'environment');
  }
});

test('a missing key only its owner can make fails preflight with where to get it, with or without a .env', async () => {
  const withKey = { services: new Map([['forge', { ...testService(), name: 'forge', secrets: ['POSTGRES_FORGEJO_PASSWORD', 'TAILSCALE_AUTHKEY'] }]]) } as unknown as Config;
  for (const env of [undefined, 'POSTGRES_FORGEJO_PASSWORD=x\n']) {
    rmSync(join(root, '.env'), { force: true });
    if (env) writeFileSync(join(root, '.env'), env);
    const checks = await envChecks(withKey, { root });
    const bad = checks.filter((c) => !c.ok);
    assert.is(bad.length, 1, JSON.stringify(checks));
    assert.match(bad[0].detail, /TAILSCALE_AUTHKEY \(declared by forge\)/);
    assert.match(bad[0].fix ?? '', /Tailscale admin console/);
    assert.not.match(JSON.stringify(checks.filter((c) => c.ok)), /TAILSCALE_AUTHKEY not set/, 'not promised as generated');
  }
  rmSync(join(root, '.env'), { force: true });
});

test('.env as a folder: the fix says so, instead of pointing at a line', async () => {
  rmSync(join(root, '.env'), { force: true });
  mkdirSync(join(root, '.env'));
  const [check] = await envChecks(config, { root });
  assert.is(check.ok, false);
  assert.match(check.fix ?? '', /folder/);
  rmSync(join(root, '.env'), { recursive: true });
});

test.run();
