// The graph: targets, did-you-mean, cycles with their path, and what forge:deploy pulls in.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildGraph, parseTargets } from '../../lib/graph.ts';
import { testConfig, testSteps } from '../support/test-steps.ts';

const config = testConfig({ sql: {}, forge: { dependsOn: ['sql'] } });
const device = config.devices.get('local')!;

test('svc:step, a bare step (every service), several at once', () => {
  const r = parseTargets(['sql:gen', 'pack'], config, testSteps);
  assert.ok(r.ok);
  if (r.ok) assert.equal(r.value, ['sql:gen', 'sql:pack', 'forge:pack']);
});

test('unknown step and service get a did-you-mean', () => {
  const r1 = parseTargets(['sql:pakc'], config, testSteps);
  assert.ok(!r1.ok && /unknown step 'pakc'/.test(r1.error.message) && r1.error.hint === "did you mean 'sql:pack'?", !r1.ok ? r1.error.hint : '');
  const r2 = parseTargets(['sqll:pack'], config, testSteps);
  assert.ok(!r2.ok && /unknown service 'sqll'/.test(r2.error.message) && /did you mean 'sql'/.test(r2.error.hint!));
  const r3 = parseTargets(['sql'], config, testSteps);
  assert.ok(!r3.ok && /is a service, not a task/.test(r3.error.message));
  const r4 = parseTargets(['pak'], config, testSteps);
  assert.ok(!r4.ok && /did you mean 'pack'/.test(r4.error.hint!));
  assert.is(!r4.ok && r4.error.code, 'usage');
});

test('a cycle is reported with its path', () => {
  // The config refuses a dependsOn loop at load (test/config.test.ts); the graph still guards against one.
  const cyclic = testConfig({ sql: {}, forge: {}, vault: {} });
  for (const [svc, dep] of [['sql', 'vault'], ['forge', 'sql'], ['vault', 'forge']]) cyclic.services.get(svc)!.dependsOn = [dep];
  const r = buildGraph(['sql:up'], cyclic, device, testSteps);
  assert.ok(!r.ok);
  if (!r.ok) {
    assert.is(r.error.message, 'dependency cycle: sql:up -> vault:up -> forge:up -> sql:up');
    assert.is(r.error.code, 'config');
  }
});

test('forge:deploy pulls in sql:kernel and nothing else of sql (real steps and config)', async () => {
  const { steps } = await import('../../tasks/index.ts');
  const { resolveConfig } = await import('../../lib/config.ts');
  const real = resolveConfig({
    services: {
      sql: { displayName: 'PostgreSQL', guestIp: '192.168.100.2', ports: [5432], readyMarker: 'PostgreSQL started', kernel: { deb: 'linux-image-cloud-amd64' }, base: { debootstrap: { suite: 'bookworm' } } },
      forge: { displayName: 'Forgejo', guestIp: '192.168.100.3', ports: [443], readyMarker: 'INIT COMPLETE', kernel: { from: 'sql' }, dependsOn: ['sql'] },
    },
  }, 'sovereign.config.ts');
  assert.ok(real.ok);
  if (!real.ok) return;
  const g = buildGraph(['forge:deploy'], real.value, real.value.devices.get('local')!, steps);
  assert.ok(g.ok, !g.ok ? g.error.message : '');
  if (!g.ok) return;
  const sqlTasks = [...g.value.nodes.keys()].filter((id) => id.startsWith('sql:'));
  assert.equal(sqlTasks, ['sql:kernel']);
  for (const want of ['forge:push-rootfs', 'forge:rootfs', 'forge:image', 'forge:push-kernel', 'forge:push-data-disk', 'forge:chmod']) assert.ok(g.value.nodes.has(want), want);
});

test.run();
