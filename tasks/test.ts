// Step `test`: the VM runs, its console shows the ready marker, every service port answers, PostgreSQL runs a real
// query, and the service's own checks pass (web UI HTTP status, its database login).
import { UserError } from '../lib/error.ts';
import type { DeviceSession } from '../lib/device/device.ts';
import type { RunContext, Step } from '../lib/task.ts';
import { portAddress, postgresProbeScript, probe, queryPostgres, tcpProbeScript } from '../lib/vm/probe.ts';
import { httpStatusScript } from '../lib/vm/checks.ts';
import { readyInLog, runningPid } from '../lib/vm/process.ts';
import { deviceLineOnce } from '../lib/device/info.ts';
import { startScriptParams } from '../lib/vm/start-script.ts';

/** Ports that get the PostgreSQL checks on top of the TCP one. */
const POSTGRES_PORTS = new Set([5432]);
/** The `.env` key holding the postgres role's password (the sql VM's init sets it). */
const POSTGRES_PASSWORD = 'POSTGRES_PASSWORD';

/** One check's verdict; `name` replaces the check's own when it had to check something else, `why` says why it failed. */
interface Verdict { ok: boolean; name?: string; why?: string }
interface Check { name: string; run: () => Promise<Verdict> }

const verdict = (ok: boolean): Verdict => ({ ok });

export const test: Step = {
  name: 'test',
  kind: 'always',
  version: 3,
  summary: 'check the VM is running, ready, its ports answer, its web UI and database login work',
  usesDevice: true,
  answers: true,
  deps: () => [],
  async run(ctx) {
    const { service } = ctx;
    const session = await ctx.session();
    const params = startScriptParams(service, session.device);
    const device = await deviceLineOnce(session, ctx.signal);
    if (device) ctx.log(device);
    const checks: Check[] = [
      { name: 'VM process running', run: async () => verdict((await runningPid(session, service.name, ctx.signal)) !== undefined) },
      {
        name: `ready marker "${service.readyMarker}" in console.log`,
        run: async () => verdict(await readyInLog(session, service.name, service.readyMarker, ctx.signal)),
      },
    ];
    for (const port of service.ports) {
      const at = portAddress(params, port);
      checks.push({ name: `port ${port} answers (${at.host}:${at.port})`, run: async () => verdict(await probe(session, tcpProbeScript(at.host, at.port), ctx.signal)) });
      if (POSTGRES_PORTS.has(port)) checks.push(await postgresCheck(ctx, session, at, port));
    }
    if (service.checks.http) checks.push(httpCheck(ctx, session, service.checks.http));
    if (service.checks.postgres) checks.push(await loginCheck(ctx, session, service.checks.postgres));
    const failed: string[] = [];
    for (const [i, c] of checks.entries()) {
      const v = await c.run();
      const name = v.name ?? c.name;
      ctx.log(`${i + 1}. ${name}: ${v.ok ? '✓ PASS' : `✗ FAIL${v.why ? ` (${v.why})` : ''}`}`);
      if (!v.ok) failed.push(v.why ? `${name}: ${v.why}` : name);
    }
    if (failed.length) throw new UserError(`${service.displayName}: ${failed.length} of ${checks.length} checks failed`, { details: failed, hint: `see \`sovereign run ${service.name}:logs\`` });
    ctx.log('=== ALL TESTS PASSED ===');
  },
};

/**
 * A login as postgres with POSTGRES_PASSWORD running `SELECT 1` through the device's psql. Without psql on the
 * device, or without the password in .env, it says so and checks the protocol (an authentication request) instead.
 */
async function postgresCheck(ctx: RunContext, session: DeviceSession, at: { host: string; port: number }, port: number): Promise<Check> {
  const protocolName = `PostgreSQL answers on ${port} (protocol only, no login)`;
  const protocol = async (): Promise<Verdict> => ({ ok: await probe(session, postgresProbeScript(at.host, at.port), ctx.signal), name: protocolName });
  const password = (await ctx.secrets())[POSTGRES_PASSWORD];
  if (!password) {
    return { name: protocolName, run: async () => { ctx.log(`${POSTGRES_PASSWORD} is not in .env: the query check needs it; checking the protocol only`); return protocol(); } };
  }
  return {
    name: `PostgreSQL on ${port}: login as postgres runs SELECT 1`,
    async run() {
      const r = await queryPostgres(session, at, password, ctx.signal);
      if (r.ok === 'no-psql') {
        ctx.log('the query check needs psql on the device (Debian: apt-get install postgresql-client); checking the protocol only');
        return protocol();
      }
      return r.ok ? { ok: true } : { ok: false, why: r.reason };
    },
  };
}

/** The web UI answers with an expected status (a page or a redirect to login), not merely an open port. */
function httpCheck(ctx: RunContext, session: DeviceSession, h: NonNullable<RunContext['service']['checks']['http']>): Check {
  const at = portAddress(startScriptParams(ctx.service, session.device), h.port);
  const url = `${h.tls ? 'https' : 'http'}://${at.host}:${at.port}${h.path}`;
  return {
    name: `${url} answers HTTP ${h.expect.join('/')}`,
    async run() {
      const r = await session.run(httpStatusScript(url), { nothrow: true, signal: ctx.signal, timeoutMs: 20_000 });
      const status = Number(r.stdout.trim().slice(-3));
      return h.expect.includes(status) ? { ok: true } : { ok: false, why: status ? `got HTTP ${status}` : 'no HTTP answer' };
    },
  };
}

/** The service's own role logs in to its database on the database VM, with its password from .env (on stdin). */
async function loginCheck(ctx: RunContext, session: DeviceSession, p: NonNullable<RunContext['service']['checks']['postgres']>): Promise<Check> {
  const db = ctx.config.services.get(p.service)!;
  const at = portAddress(startScriptParams(db, session.device), 5432);
  const name = `database login as ${p.user} to ${p.service}/${p.database} runs SELECT 1`;
  const password = (await ctx.secrets())[p.passwordSecret];
  if (!password) return { name, run: async () => ({ ok: false, why: `${p.passwordSecret} is not in .env (or not among services.${ctx.service.name}.secrets)` }) };
  return {
    name,
    async run() {
      const r = await queryPostgres(session, at, password, ctx.signal, { user: p.user, database: p.database });
      if (r.ok === 'no-psql') return { ok: false, why: 'the check needs psql on the device (Debian: apt-get install postgresql-client)' };
      return r.ok ? { ok: true } : { ok: false, why: r.reason };
    },
  };
}

export default test;
