// Step `image`: docker/podman build of vm/<service>/Dockerfile, on top of the base image and pinned upstream images.
import { join } from 'node:path';
import type { Device } from '../lib/config.ts';
import type { PlanContext, RunContext, Step } from '../lib/task.ts';
import { UserError } from '../lib/error.ts';
import { exists } from '../lib/fsutil.ts';
import { buildImage, checkDaemon, imageExists, isImageId } from '../lib/build/builder.ts';
import { archSpec } from '../lib/arch.ts';

/** The build platform: the service's own, else the device's architecture (an arm64 phone gets arm64 images). */
export function platformOf(service: PlanContext['service'], device: Device): string {
  return service.platform ?? archSpec(device.arch).platform;
}

export const step: Step = {
  name: 'image',
  kind: 'artifact',
  version: 1,
  summary: 'container image built from the service Dockerfile',
  deps: ({ service }) => [...(service.base ? [`${service.name}:base`] : []), ...(service.upstream.length ? [`${service.name}:upstream`] : [])],
  inputs: ({ service, config, device }) => ({
    // dir: where the Dockerfile is; buildArgs and platform change what is built; the builder is a tool.
    config: { dir: service.dir, buildArgs: service.buildArgs, platform: platformOf(service, device), builder: config.builder },
    files: [{ dir: service.dir, ignoreFile: '.dockerignore' }],
  }),
  valueShape: isImageId,
  present: async ({ config }, value) => isImageId(value) && (await imageExists(config.builder, value).catch(() => false)),
  async run(ctx) {
    const { service, config } = ctx;
    const dockerfile = join(ctx.root, service.dir, 'Dockerfile');
    if (!(await exists(dockerfile))) throw new UserError(`${service.dir}/Dockerfile not found`, { hint: `create it, or set services.${service.name}.dir to the folder that has one` });
    await checkDaemon(config.builder);
    const buildArgs = { ...service.buildArgs };
    if (service.base) buildArgs.BASE_IMAGE = baseImage(ctx);
    // Each pinned upstream image by its verified id, never by a tag a registry could move.
    if (service.upstream.length) Object.assign(buildArgs, ctx.dep(`${service.name}:upstream`).value as Record<string, string>);
    const id = await buildImage({
      kind: config.builder, dockerfile, context: join(ctx.root, service.dir), buildArgs, platform: platformOf(service, ctx.device),
      tag: `sovereign-${service.name}:${ctx.key.slice(0, 12)}`, signal: ctx.signal, onLine: ctx.log,
    });
    return { value: id };
  },
};

/** The base image id. The engine has made sure it exists (its `present` check re-runs `base` when it does not). */
function baseImage(ctx: RunContext): string {
  const base = ctx.dep(`${ctx.service.name}:base`).value;
  if (typeof base !== 'string' || !base) throw new UserError(`${ctx.service.name}:base produced no image`, { hint: `check services.${ctx.service.name}.base in sovereign.config.ts` });
  return base;
}

export default step;
