// Step `start`: boots the service's VM under its supervisor with the deployed files and waits for its ready marker; skipped when it already runs that set.
import type { RunContext, Step } from '../lib/task.ts';
import { chooseAccel } from '../lib/vm/accel.ts';
import { waitForReady } from '../lib/vm/boot.ts';
import { runningPid, stopVm, VM_FILES, vmPath } from '../lib/vm/process.ts';
import { startEnv } from '../lib/vm/start-script.ts';
import { startSupervised } from '../lib/vm/supervisor.ts';
import { shQuote } from '../lib/device/shell.ts';

/** The deployed set the VM should run: deploy's output hash (changes whenever a pushed file does). */
const wanted = (ctx: RunContext) => ctx.dep(`${ctx.service.name}:deploy`).outputHash;

export const start: Step = {
  name: 'start',
  kind: 'effect',
  version: 1,
  summary: 'boot the VM and wait until it is ready',
  usesDevice: true,
  deps: ({ service }) => [`${service.name}:deploy`, ...service.dependsOn.map((d) => `${d}:start`)],
  inputs: ({ service }) => ({ config: { readyMarker: service.readyMarker, failureMarkers: service.failureMarkers, startTimeout: service.startTimeout } }),

  async check(ctx) {
    const session = await ctx.session();
    const pid = await runningPid(session, ctx.service.name, ctx.signal);
    if (pid === undefined) return 'VM not running';
    const deployed = (await session.readFile(vmPath(session, ctx.service.name, 'deployed')))?.toString().trim();
    if (deployed !== wanted(ctx)) return `VM (pid ${pid}) runs ${deployed ? 'an older' : 'an unknown'} deployed set`;
    return true;
  },

  async run(ctx) {
    const { service } = ctx;
    const session = await ctx.session();
    const dir = session.serviceDir(service.name);
    const old = await stopVm(session, service.name, { signal: ctx.signal });
    if (old.state !== 'not running') ctx.log(`stopped the running VM (pid ${old.pid}) to start the deployed set`);
    // Stale files of an earlier run would confuse the wait (old log lines, old pid) and crosvm (socket in use).
    await session.run(`cd ${shQuote(dir)} && rm -f ${VM_FILES.log} ${VM_FILES.prevLog} ${VM_FILES.pid} ${VM_FILES.socket} ${VM_FILES.deployed} ${VM_FILES.supervisorState}`, { signal: ctx.signal });
    const accel = await chooseAccel(session, service.name, { signal: ctx.signal });
    const log = vmPath(session, service.name, 'log');
    const pidFile = vmPath(session, service.name, 'pid');
    // The supervisor stays the VM's parent and restarts it if it dies later; during this boot a death fails the start.
    const { supervisor, vm: pid } = await startSupervised(session, service.name, startEnv(service, accel), ctx.signal);
    ctx.log(`booting ${service.displayName} (pid ${pid}, ${session.device.hypervisor}${session.device.hypervisor === 'qemu' ? `/${accel}` : ''}, supervisor pid ${supervisor})`);
    try {
      const ready = await waitForReady({
        session, log, pidFile, pid,
        readyMarker: service.readyMarker,
        failureMarkers: service.failureMarkers,
        timeoutMs: service.startTimeout * 1000,
        name: service.displayName,
        signal: ctx.signal,
        onLine: (line) => ctx.log(`| ${line}`),
      });
      ctx.log(`${service.displayName} ready in ${(ready.ms / 1000).toFixed(1)}s`);
    } catch (e) {
      // A VM that did not come up is stopped (its console.log stays for `logs`); so is one whose start was cancelled.
      await stopVm(session, service.name, { shutdownSeconds: 5, graceSeconds: 2 }).catch(() => undefined);
      throw e;
    }
    await session.writeFile(vmPath(session, service.name, 'deployed'), `${wanted(ctx)}\n`, 0o644);
  },
};

export default start;
