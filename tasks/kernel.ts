// Step `kernel`: the service's guest kernel (downloaded and checksum-verified, copied, or from a Debian package) and
// the guest modules that match it (modules.tar, installed by rootfs), or another service's.
import { isAbsolute, join } from 'node:path';
import { VM_FILES } from '../lib/vm/files.ts';
import type { Step } from '../lib/task.ts';
import { fetchKernel, kernelKeyInput } from '../lib/vm/kernel.ts';

export const kernel: Step = {
  name: 'kernel',
  kind: 'artifact',
  version: 2,
  summary: 'guest kernel image, checksum-verified, and its NIC modules',
  deps: () => [],
  // `{ from: 'sql' }` is sql's kernel task under a second name: fetched once, shared.
  alias: ({ service }) => ('from' in service.kernel ? `${service.kernel.from}:kernel` : undefined),
  // A `{ deb }` kernel is the device's architecture's package; a file or URL is the same bytes on any device.
  async inputs({ service, device }) {
    const source = service.kernel;
    // A repo file is hashed by the engine like any input; an absolute one by content here (its path must not reach the key).
    if ('path' in source && !isAbsolute(source.path)) return { config: { kernel: 'file' }, files: [{ file: source.path }] };
    return { config: { kernel: await kernelKeyInput(source, '/', device.arch) } };
  },
  // modules.tar: the NIC drivers a `{ deb }` kernel builds as modules, with their load order; empty for other sources.
  outputs: () => [VM_FILES.kernel, 'modules.tar'],
  async run(ctx) {
    await fetchKernel(ctx.service.kernel, {
      root: ctx.root,
      dest: join(ctx.outDir, VM_FILES.kernel),
      modulesDest: join(ctx.outDir, 'modules.tar'),
      arch: ctx.device.arch,
      signal: ctx.signal,
      progress: (done, total) => ctx.progress(done, total, 'kernel'),
      log: ctx.log,
    });
  },
};

export default kernel;
