// Step `test`: the VM runs, its console shows the ready marker, and every service port answers (PostgreSQL with a real startup exchange).
import { UserError } from '../lib/error.ts';
import { shQuote } from '../lib/device/shell.ts';
import type { Step } from '../lib/task.ts';
import { portAddress, postgresProbeScript, probe, tcpProbeScript } from '../lib/vm/probe.ts';
import { runningPid, vmPath } from '../lib/vm/process.ts';
import { startScriptParams } from '../lib/vm/start-script.ts';

/** Ports that get the PostgreSQL protocol check on top of the TCP one. */
const POSTGRES_PORTS = new Set([5432]);

export const test: Step = {
  name: 'test',
  kind: 'always',
  version: 1,
  summary: 'check the VM is running, ready, and its ports answer',
  usesDevice: true,
  deps: () => [],
  async run(ctx) {
    const { service } = ctx;
    const session = await ctx.session();
    const params = startScriptParams(service, session.device);
    const checks: { name: string; run: () => Promise<boolean> }[] = [
      { name: 'VM process running', run: async () => (await runningPid(session, service.name, ctx.signal)) !== undefined },
      {
        name: `ready marker "${service.readyMarker}" in console.log`,
        run: async () => (await session.run(`grep -qF -- ${shQuote(service.readyMarker)} ${shQuote(vmPath(session, service.name, 'log'))}`, { nothrow: true, signal: ctx.signal })).code === 0,
      },
    ];
    for (const port of service.ports) {
      const at = portAddress(params, port);
      checks.push({ name: `port ${port} answers (${at.host}:${at.port})`, run: () => probe(session, tcpProbeScript(at.host, at.port), ctx.signal) });
      if (POSTGRES_PORTS.has(port)) {
        checks.push({ name: `PostgreSQL answers on ${port}`, run: () => probe(session, postgresProbeScript(at.host, at.port), ctx.signal) });
      }
    }
    const failed: string[] = [];
    for (const [i, c] of checks.entries()) {
      const ok = await c.run();
      ctx.log(`${i + 1}. ${c.name}: ${ok ? '✓ PASS' : '✗ FAIL'}`);
      if (!ok) failed.push(c.name);
    }
    if (failed.length) throw new UserError(`${service.displayName}: ${failed.length} of ${checks.length} checks failed`, { details: failed, hint: `see \`sovereign run ${service.name}:logs\`` });
    ctx.log('=== ALL TESTS PASSED ===');
  },
};

export default test;
