// Step `logs`: prints the last lines of the VM's serial console log.
import type { Step } from '../lib/task.ts';
import { consoleTail } from '../lib/vm/process.ts';

/** Lines shown: enough for a boot failure, not a 3 MB log. */
const LINES = 200;

export const logs: Step = {
  name: 'logs',
  kind: 'always',
  version: 1,
  summary: `print the last ${LINES} lines of the VM console log`,
  usesDevice: true,
  answers: true,
  deps: () => [],
  async run(ctx) {
    const text = await consoleTail(await ctx.session(), ctx.service.name, LINES, ctx.signal);
    if (!text) { ctx.log(`${ctx.service.displayName}: no console log yet`); return; }
    // The serial console ends lines with \r\n.
    for (const line of text.replace(/\r?\n$/, '').split(/\r?\n/)) ctx.log(line);
  },
};

export default logs;
