// Step `chmod`: start.sh executable on the device (0755), checked by reading its mode.
import { posix } from 'node:path';
import { VM_FILES } from '../lib/vm/files.ts';
import { shQuote } from '../lib/device/shell.ts';
import type { Step } from '../lib/task.ts';

const MODE = 0o755;

export const chmod: Step = {
  name: 'chmod',
  kind: 'effect',
  version: 1,
  summary: 'start.sh executable (0755) on the device',
  usesDevice: true,
  deps: (ctx) => [`${ctx.service.name}:push-start-script`],
  async check(ctx) {
    const dev = await ctx.session();
    const mode = await dev.mode(posix.join(dev.serviceDir(ctx.service.name), VM_FILES.script));
    if (mode === undefined) return 'start.sh is not on the device';
    return mode === MODE ? true : `start.sh has mode ${mode.toString(8)}, not ${MODE.toString(8)}`;
  },
  async run(ctx) {
    const dev = await ctx.session();
    await dev.run(`chmod ${MODE.toString(8)} ${shQuote(posix.join(dev.serviceDir(ctx.service.name), VM_FILES.script))}`, { signal: ctx.signal });
  },
};

export default chmod;
