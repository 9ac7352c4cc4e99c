// Step `status`: the device (once per run), then whether the VM runs and is ready, with which deployed set, its supervisor,
// and its last console line; the same as facts for --json (`running`, `ready`, `pid`, `deployed`, `supervisor`).
import { deviceLineOnce } from '../lib/device/info.ts';
import type { Step } from '../lib/task.ts';
import { consoleTail, readyInLog, runningPid, vmPath } from '../lib/vm/process.ts';
import { describeSupervisor, supervisorState } from '../lib/vm/supervisor.ts';

export const status: Step = {
  name: 'status',
  kind: 'always',
  version: 3,
  summary: 'show the device, and whether the VM is running and ready',
  usesDevice: true,
  answers: true,
  deps: () => [],
  async run(ctx) {
    const { service } = ctx;
    const session = await ctx.session();
    const device = await deviceLineOnce(session, ctx.signal);
    if (device) ctx.log(device);
    const pid = await runningPid(session, service.name, ctx.signal);
    const supervisor = await supervisorState(session, service.name, ctx.signal);
    if (pid === undefined) {
      ctx.facts({ service: service.name, running: false, ready: false, ...(supervisor ? { supervisor } : {}) });
      ctx.log(`${service.displayName}: not running`);
      if (supervisor) ctx.log(`  ${describeSupervisor(supervisor)}`);
      return;
    }
    const deployed = (await session.readFile(vmPath(session, service.name, 'deployed')))?.toString().trim();
    const ready = await readyInLog(session, service.name, service.readyMarker, ctx.signal);
    ctx.facts({ service: service.name, running: true, ready, pid, deployed: deployed || null, ...(supervisor ? { supervisor } : {}) });
    ctx.log(`${service.displayName}: running, ${ready ? 'ready' : 'not ready yet'} (pid ${pid}, deployed set ${deployed ? deployed.slice(0, 12) : 'unknown'})`);
    ctx.log(`  ${describeSupervisor(supervisor)}`);
    const last = (await consoleTail(session, service.name, 1, ctx.signal)).trim();
    if (last) ctx.log(`  last console line: ${last}`);
  },
};

export default status;
