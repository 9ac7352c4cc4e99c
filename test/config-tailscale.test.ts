// Tailscale pinned for a service (upstream.TAILSCALE_IMAGE) needs its auth key declared: otherwise no run can send
// it and the guest's init stops at its first boot (it needs a login). Refused at load instead (exit 3).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveConfig } from '../lib/config.ts';

const forge = (secrets: string[]) => resolveConfig({ services: { forge: {
  displayName: 'Forgejo', guestIp: '192.168.100.3', ports: [443], readyMarker: 'ready', kernel: { deb: 'linux-image-cloud-amd64' }, dir: 'vm/forge',
  upstream: { FORGEJO_IMAGE: 'codeberg.org/forgejo/forgejo:11.0.15', TAILSCALE_IMAGE: 'tailscale/tailscale:v1.92.3' }, secrets,
} } }, 'sovereign.config.ts');

test('TAILSCALE_IMAGE without TAILSCALE_AUTHKEY among the secrets: exit 3 naming the field and the fix', () => {
  const r = forge(['FORGEJO_SECRET_KEY']);
  assert.not.ok(r.ok, 'accepted a Tailscale pin without its auth key');
  if (r.ok) return;
  assert.is(r.error.code, 'config');
  assert.match(JSON.stringify({ m: r.error.message, d: r.error.details, h: r.error.hint }), /services\.forge\.secrets[^]*TAILSCALE_AUTHKEY[^]*TAILSCALE_IMAGE/);
});

test('TAILSCALE_IMAGE with TAILSCALE_AUTHKEY declared is fine', () => {
  const r = forge(['FORGEJO_SECRET_KEY', 'TAILSCALE_AUTHKEY']);
  assert.ok(r.ok, r.ok ? '' : r.error.message + JSON.stringify(r.error.details));
});

test.run();
