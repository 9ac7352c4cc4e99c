// Step `start-script`: start.sh rendered for the device's hypervisor (qemu or crosvm).
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Step } from '../lib/task.ts';
import { renderStartScript, startScriptParams } from '../lib/vm/start-script.ts';

export const startScript: Step = {
  name: 'start-script',
  kind: 'artifact',
  version: 1,
  summary: 'start.sh rendered for the device hypervisor',
  deps: () => [],
  // Only the fields the script is made of: memory, cpus, ports, guestIp, cmdline, name/index, hypervisor, arch.
  inputs: ({ service, device }) => ({ config: startScriptParams(service, device) }),
  outputs: () => ['start.sh'],
  async run(ctx) {
    await fs.writeFile(join(ctx.outDir, 'start.sh'), renderStartScript(startScriptParams(ctx.service, ctx.device)), { mode: 0o755 });
  },
};

export default startScript;
