// Step `status`: whether the VM runs, with which deployed set, and its last console line.
import type { Step } from '../lib/task.ts';
import { consoleTail, runningPid, vmPath } from '../lib/vm/process.ts';

export const status: Step = {
  name: 'status',
  kind: 'always',
  version: 1,
  summary: 'show whether the VM is running',
  usesDevice: true,
  answers: true,
  deps: () => [],
  async run(ctx) {
    const { service } = ctx;
    const session = await ctx.session();
    const pid = await runningPid(session, service.name, ctx.signal);
    if (pid === undefined) { ctx.log(`${service.displayName}: not running`); return; }
    const deployed = (await session.readFile(vmPath(session, service.name, 'deployed')))?.toString().trim();
    ctx.log(`${service.displayName}: running (pid ${pid}, deployed set ${deployed ? deployed.slice(0, 12) : 'unknown'})`);
    const last = (await consoleTail(session, service.name, 1, ctx.signal)).trim();
    if (last) ctx.log(`  last console line: ${last}`);
  },
};

export default status;
