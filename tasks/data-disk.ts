// Step `data-disk`: the empty sparse ext4 data.img, made once; the engine never replaces it without --fresh-data.
import { join } from 'node:path';
import { VM_FILES } from '../lib/vm/files.ts';
import type { Step } from '../lib/task.ts';
import { createDataDisk } from '../lib/build/ext4.ts';

export const step: Step = {
  name: 'data-disk',
  kind: 'create-once',
  version: 1,
  summary: 'sparse ext4 data.img (user data, created once)',
  deps: () => [],
  inputs: ({ service }) => ({ config: { dataDiskSize: service.dataDiskSize } }),
  outputs: () => [VM_FILES.data],
  async run(ctx) {
    await createDataDisk({ out: join(ctx.outDir, VM_FILES.data), sizeBytes: ctx.service.dataDiskSize, label: 'sovereign-data' });
  },
};

export default step;
