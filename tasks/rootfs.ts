// Step `rootfs`: rootfs.img from the service's image, with init.sh at /sbin/init and the kernel's guest modules;
// no root, no mount, reproducible.
import { promises as fs } from 'node:fs';
import { VM_FILES } from '../lib/vm/files.ts';
import { join } from 'node:path';
import type { Step } from '../lib/task.ts';
import { UserError } from '../lib/error.ts';
import { checkDaemon, exportImage } from '../lib/build/builder.ts';
import { buildRootfs } from '../lib/build/rootfs.ts';

/** Shared shell functions every init.sh sources (mounts, data disk, secrets, network). */
export const INIT_LIB = 'vm/common/init-lib.sh';

export const step: Step = {
  name: 'rootfs',
  kind: 'artifact',
  // 3: build state (logs, caches, machine ids, install-time keys) dropped and account dates fixed (build-state.ts).
  version: 3,
  summary: 'ext4 rootfs.img with init, device nodes, owners and fixed times',
  // The service's own kernel task (an alias of sql:kernel for a shared kernel): its modules.tar goes into the rootfs.
  deps: ({ service }) => [`${service.name}:image`, `${service.name}:kernel`],
  inputs: ({ service }) => ({
    // rootfsSize shapes the file system; the service name seeds its UUID and hash seed.
    config: { rootfsSize: service.rootfsSize, seed: service.name },
    files: [{ file: `${service.dir}/init.sh` }, { file: INIT_LIB }],
    tools: ['mke2fs', 'debugfs'],
  }),
  outputs: () => [VM_FILES.rootfs],
  async run(ctx) {
    const { service, config } = ctx;
    const image = ctx.dep(`${service.name}:image`).value;
    await checkDaemon(config.builder);
    // The engine has made sure the image exists (the image step's `present` check re-runs it when not).
    if (typeof image !== 'string' || !image) throw new UserError(`${service.name}:image produced no image id`);
    const tar = join(ctx.outDir, 'image.tar');
    ctx.progress(0, undefined, 'exporting image');
    try {
      await exportImage(config.builder, image, tar, ctx.signal);
      await buildRootfs({
        tar, out: join(ctx.outDir, VM_FILES.rootfs), sizeBytes: service.rootfsSize,
        initSh: join(ctx.root, service.dir, 'init.sh'), initLib: join(ctx.root, INIT_LIB),
        modulesTar: ctx.dep(`${service.name}:kernel`).files['modules.tar']?.path,
        workDir: ctx.outDir, seed: `sovereign-rootfs-${service.name}`, sizeField: `services.${service.name}.rootfsSize`,
        signal: ctx.signal, onProgress: (done, total, label) => ctx.progress(done, total, label),
      });
    } finally {
      await fs.rm(tar, { force: true }); // ~the image's size; not an output
    }
  },
};

export default step;
