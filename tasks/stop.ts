// Step `stop`: TERM, then KILL after a grace period; removes only this VM's pid, socket and TAP. Idempotent.
import type { Step } from '../lib/task.ts';
import { stopVm } from '../lib/vm/process.ts';

export const stop: Step = {
  name: 'stop',
  kind: 'always',
  version: 1,
  summary: 'stop the VM',
  usesDevice: true,
  deps: () => [],
  async run(ctx) {
    const r = await stopVm(await ctx.session(), ctx.service.name, { signal: ctx.signal });
    if (r.state === 'not running') ctx.log(`${ctx.service.displayName}: VM not running`);
    else ctx.log(`${ctx.service.displayName}: stopped (pid ${r.pid}${{ shutdown: ', clean shutdown', ended: ', by its hypervisor\'s stop command', stopped: ', on SIGTERM', killed: ', needed SIGKILL' }[r.state]})`);
  },
};

export default stop;
