// The aggregate steps: build (every artifact a VM needs) and deploy (every push plus chmod).
import type { Step } from '../lib/task.ts';

const svc = (s: string) => (ctx: { service: { name: string } }) => `${ctx.service.name}:${s}`;

export const build: Step = {
  name: 'build',
  kind: 'aggregate',
  version: 1,
  summary: 'image, rootfs, data disk, kernel and start script',
  deps: (ctx) => ['image', 'rootfs', 'data-disk', 'kernel', 'start-script'].map((s) => svc(s)(ctx)),
};

export const deploy: Step = {
  name: 'deploy',
  kind: 'aggregate',
  version: 1,
  summary: 'push what the device lacks (rootfs, kernel, start script, data disk, secrets) and chmod',
  deps: (ctx) => ['push-rootfs', 'push-kernel', 'push-start-script', 'push-data-disk', 'push-secrets', 'chmod'].map((s) => svc(s)(ctx)),
};
