// Step `start-script`: start.sh rendered for the device's hypervisor (qemu or crosvm).
import { promises as fs } from 'node:fs';
import { VM_FILES } from '../lib/vm/files.ts';
import { join } from 'node:path';
import type { Step } from '../lib/task.ts';
import { renderStartScript, startScriptParams } from '../lib/vm/start-script.ts';

export const startScript: Step = {
  name: 'start-script',
  kind: 'artifact',
  // 2: crosvm's start.sh writes teardown.sh.
  version: 2,
  summary: 'start.sh rendered for the device hypervisor',
  deps: () => [],
  // Only the fields the script is made of: memory, cpus, ports, guestIp, cmdline, name/index, hypervisor, arch.
  inputs: ({ service, device }) => ({ config: startScriptParams(service, device) }),
  outputs: () => [VM_FILES.script],
  async run(ctx) {
    await fs.writeFile(join(ctx.outDir, VM_FILES.script), renderStartScript(startScriptParams(ctx.service, ctx.device)), { mode: 0o755 });
  },
};

export default startScript;
