// Step `base`: the service's base image (debootstrap + import, no registry), or another service's under a second name.
import type { PlanContext, Step } from '../lib/task.ts';
import { bootstrapper, buildBase } from '../lib/build/base.ts';
import { archSpec } from '../lib/arch.ts';
import { imageExists, isImageId } from '../lib/build/builder.ts';

const debootstrapOf = ({ service }: Pick<PlanContext, 'service'>) => (service.base && 'debootstrap' in service.base ? service.base.debootstrap : undefined);

export const step: Step = {
  name: 'base',
  kind: 'artifact',
  version: 1,
  summary: 'base image from mmdebstrap or debootstrap for the device\'s architecture, imported into the image builder',
  deps: () => [],
  alias: ({ service }) => (service.base && 'from' in service.base ? `${service.base.from}:base` : undefined),
  // debootstrap output follows the mirror, not just these fields; the key says "this recipe", the image id is the output.
  // The recipe includes the device's architecture (an arm64 phone never gets an amd64 root) and the tool that ran it.
  inputs: async (ctx) => ({
    config: { debootstrap: debootstrapOf(ctx) ?? null, arch: archSpec(ctx.device.arch).deb, tool: await bootstrapper(), builder: ctx.config.builder },
  }),
  valueShape: (value) => value === null || isImageId(value),
  present: async ({ config }, value) => value === null || (isImageId(value) && await imageExists(config.builder, value).catch(() => false)),
  async run(ctx) {
    const spec = debootstrapOf(ctx);
    if (!spec) { ctx.log(`${ctx.service.name} has no base configured`); return { value: null }; }
    const id = await buildBase({
      kind: ctx.config.builder, suite: spec.suite, variant: spec.variant, include: spec.include, arch: ctx.device.arch,
      tag: `sovereign-base-${ctx.service.name}:${ctx.key.slice(0, 12)}`, workDir: ctx.outDir, signal: ctx.signal, onLine: ctx.log,
    });
    return { value: id };
  },
};

export default step;
