// Test fixture: the STAND-IN upstream images (busybox plus a script doing what the guest asks of the real binary),
// pushed to the loopback registry (registry.ts) under the path the real image has, and the config pin that makes
// sovereign pull them from there through the same code a user's `mirror` setting runs.
import { join } from 'node:path';
import { busyboxImage } from './dockerd.ts';
import { pushStandInImage, type Registry } from './registry.ts';

const support = import.meta.dirname;

/** Each stand-in: its key in services.<svc>.upstream, the image sovereign.config.ts pins, its files (path in the image -> file here). */
export const standIns = {
  forge: { key: 'FORGEJO_IMAGE', image: 'codeberg.org/forgejo/forgejo:11.0.15', files: { '/app/gitea/gitea': 'forgejo-standin.sh' } },
  vault: {
    key: 'VAULTWARDEN_IMAGE', image: 'vaultwarden/server:1.34.3',
    files: { '/vaultwarden': 'vaultwarden-standin.sh', '/web-vault/index.html': 'vaultwarden-standin-web/index.html' },
  },
  tailscale: {
    key: 'TAILSCALE_IMAGE', image: 'tailscale/tailscale:v1.92.3',
    files: { '/usr/local/bin/tailscale': 'tailscale-standin.sh', '/usr/local/bin/tailscaled': 'tailscale-standin.sh' },
  },
} as const;
export type StandIn = keyof typeof standIns;

/** Where a mirror keeps an image: its path without a registry host (Docker Hub names keep theirs). */
export const mirrorPath = (image: string) => (image.split('/')[0].includes('.') ? image.slice(image.indexOf('/') + 1) : image);

/** Pushes the named stand-ins to the registry (built on one busybox image) and removes them locally. */
export async function pushStandIns(dockerEnv: NodeJS.ProcessEnv, registry: Registry, names: StandIn[]): Promise<void> {
  const base = await busyboxImage(dockerEnv, 'sov-standin-busybox:1');
  for (const name of names) {
    const { image, files } = standIns[name];
    const local = Object.fromEntries(Object.entries(files).map(([dest, src]) => [dest, join(support, src)]));
    await pushStandInImage({ dockerEnv, registry, path: mirrorPath(image), base, files: local });
  }
}

/** The pin `KEY: 'image'` as the config has it, and the same pin pulled from the registry at `host`. */
export function pin(name: StandIn, host?: string): string {
  const { key, image } = standIns[name];
  return host ? `${key}: { image: '${image}', mirror: '${host}' }` : `${key}: '${image}'`;
}

/** `config` with `name`'s pin pulled from the registry at `host`; throws when the config no longer pins it. */
export function mirrorPin(config: string, name: StandIn, host: string): string {
  if (!config.includes(pin(name))) throw new Error(`sovereign.config.ts no longer pins ${pin(name)}: update test/support/standin-images.ts`);
  return config.replace(pin(name), pin(name, host));
}
