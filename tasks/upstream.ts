// Step `upstream`: the service's pinned upstream images, fetched once and verified against sovereign.lock.json.
import type { Step } from '../lib/task.ts';
import { checkDaemon, imageExists, isImageId } from '../lib/build/builder.ts';
import { fetchUpstream } from '../lib/upstream/fetch.ts';
import { platformOf } from './image.ts';
import { isObject } from '../lib/guards.ts';

export const step: Step = {
  name: 'upstream',
  kind: 'artifact',
  version: 1,
  summary: 'pinned upstream images (Forgejo, Vaultwarden), verified against sovereign.lock.json',
  deps: () => [],
  // The pin and the platform decide the bytes; a mirror or file must serve those same bytes (the lock checks it),
  // so where they come from is no part of the key. The output value (the image ids) keys the image step.
  inputs: ({ service, device, config }) => ({ config: { upstream: service.upstream.map((u) => [u.arg, u.image]), platform: platformOf(service, device), builder: config.builder } }),
  // Build-arg name -> image id: a record from outside with anything else is refused (its ids reach docker's argv).
  valueShape: (value) => isObject(value)
    && Object.entries(value).every(([arg, id]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(arg) && isImageId(id)),
  present: async ({ config }, value) => !value || typeof value !== 'object' || (await Promise.all(Object.values(value).map((id) => imageExists(config.builder, String(id)).catch(() => false)))).every(Boolean),
  async run(ctx) {
    if (ctx.service.upstream.length === 0) return { value: {} };
    await checkDaemon(ctx.config.builder);
    const ids: Record<string, string> = {};
    for (const u of ctx.service.upstream) {
      ids[u.arg] = await fetchUpstream({ kind: ctx.config.builder, root: ctx.root, service: ctx.service.name, upstream: u, platform: platformOf(ctx.service, ctx.device), signal: ctx.signal, log: ctx.log });
    }
    return { value: ids };
  },
};

export default step;
