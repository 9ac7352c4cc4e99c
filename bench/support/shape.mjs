// Synthetic steps with the lifecycle's task shape (base, image, rootfs, data-disk, shared kernel, start-script,
// pushes, chmod, deploy) but cheap work, so the no-op benchmark measures the engine, not docker.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';

const artifact = (name, deps, inputs, out) => ({
  name, kind: 'artifact', version: 1, summary: name, deps, inputs, outputs: () => [out],
  async run(ctx) { await fs.writeFile(join(ctx.outDir, out), `${ctx.task} ${ctx.key}`); },
});
const firstOf = new WeakMap();
const first = (ctx) => {
  if (!firstOf.has(ctx.config)) firstOf.set(ctx.config, ctx.config.services.keys().next().value);
  return firstOf.get(ctx.config);
};
// Pushes check and record through the real device session of the run's device (the `local` one): its manifests,
// every service's read in one device command, as a real deploy reads them; only the file copy itself is left out.
function pushStep(file, depStep) {
  const depOf = (ctx) => (depStep === 'kernel' && ctx.service.kernel.from ? `${ctx.service.kernel.from}:kernel` : `${ctx.service.name}:${depStep}`);
  return {
    name: `push-${depStep}`, kind: 'effect', version: 1, summary: 'push', usesDevice: true,
    deps: (ctx) => [depOf(ctx)],
    async check(ctx) {
      const m = await (await ctx.session()).manifest(ctx.service.name);
      return m.files[file]?.sha256 === ctx.dep(depOf(ctx)).outputHash ? true : 'not on the device';
    },
    async run(ctx) {
      await (await ctx.session()).recordPush(ctx.service.name, file, { sha256: ctx.dep(depOf(ctx)).outputHash, size: 0 });
    },
  };
}

export const steps = new Map([
  artifact('base', () => [], (ctx) => ({ config: { suite: 'bookworm' } }), 'base.id'),
  { ...artifact('image', (ctx) => [`${first(ctx)}:base`], (ctx) => ({ files: [{ dir: ctx.service.dir, ignoreFile: '.dockerignore' }], config: { buildArgs: ctx.service.buildArgs } }), 'image.id') },
  artifact('rootfs', (ctx) => [`${ctx.service.name}:image`], (ctx) => ({ files: [{ file: `${ctx.service.dir}/init.sh` }], config: { size: ctx.service.rootfsSize } }), 'rootfs.img'),
  { ...artifact('kernel', () => [], (ctx) => ({ config: ctx.service.kernel }), 'kernel'), alias: (ctx) => (ctx.service.kernel.from ? `${ctx.service.kernel.from}:kernel` : undefined) },
  artifact('start-script', () => [], (ctx) => ({ config: { memory: ctx.service.memory, ports: ctx.service.ports } }), 'start.sh'),
  pushStep('rootfs.img', 'rootfs'),
  pushStep('kernel', 'kernel'),
  pushStep('start.sh', 'start-script'),
  { name: 'deploy', kind: 'aggregate', version: 1, summary: 'deploy', deps: (ctx) => ['push-rootfs', 'push-kernel', 'push-start-script'].map((s) => `${ctx.service.name}:${s}`) },
].map((s) => [s.name, s]));
