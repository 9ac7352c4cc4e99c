// The services sovereign builds and deploys, and the devices it deploys to.
import { defineConfig } from 'sovereign';

export default defineConfig({
  services: {
    sql: {
      displayName: 'PostgreSQL',
      guestIp: '192.168.100.2',
      ports: [5432],
      readyMarker: 'PostgreSQL started',
      failureMarkers: ['Kernel panic', 'FATAL: data disk'],
      startTimeout: 180,
      memory: 1024,
      cpus: 2,
      // {arch} is the device's Debian architecture: amd64 for an x86 box, arm64 for a phone.
      kernel: { deb: 'linux-image-cloud-{arch}' },
      base: { debootstrap: { suite: 'bookworm', variant: 'minbase' } },
      secrets: ['POSTGRES_PASSWORD', 'POSTGRES_FORGEJO_PASSWORD', 'POSTGRES_VAULTWARDEN_PASSWORD'],
    },
    forge: {
      displayName: 'Forgejo',
      guestIp: '192.168.100.3',
      ports: [443],
      // expose: [443], // reachable from your LAN on the device's address (off by default: README "Exposing a service")
      readyMarker: 'INIT COMPLETE',
      startTimeout: 120,
      memory: 1024,
      cpus: 2,
      kernel: { from: 'sql' },
      base: { debootstrap: { suite: 'bookworm', variant: 'minbase' } },
      dependsOn: ['sql'],
      // Forgejo 11 LTS from Codeberg's container image; its image id is recorded in sovereign.lock.json on first fetch.
      // To join your tailnet (README "Tailscale"), add TAILSCALE_IMAGE: 'tailscale/tailscale:v1.92.3' here and
      // 'TAILSCALE_AUTHKEY' to secrets (the same works for vault).
      upstream: { FORGEJO_IMAGE: 'codeberg.org/forgejo/forgejo:11.0.15' },
      // `test --forge`: the web UI answers (200, or a redirect to the login page) and forge's own database login works.
      checks: { http: { port: 443, path: '/' }, postgres: { service: 'sql', user: 'forgejo', passwordSecret: 'POSTGRES_FORGEJO_PASSWORD' } },
      secrets: ['POSTGRES_FORGEJO_PASSWORD', 'FORGEJO_SECRET_KEY', 'FORGEJO_INTERNAL_TOKEN'],
    },
    vault: {
      displayName: 'Vaultwarden',
      guestIp: '192.168.100.4',
      ports: [443],
      readyMarker: 'INIT COMPLETE',
      startTimeout: 120,
      kernel: { from: 'sql' },
      base: { debootstrap: { suite: 'bookworm', variant: 'minbase' } },
      dependsOn: ['sql'],
      // The official image's Debian (bookworm) variant, matching this guest's libraries.
      upstream: { VAULTWARDEN_IMAGE: 'vaultwarden/server:1.34.3' },
      checks: { http: { port: 443, path: '/alive', expect: [200] }, postgres: { service: 'sql', user: 'vaultwarden', passwordSecret: 'POSTGRES_VAULTWARDEN_PASSWORD' } },
      secrets: ['POSTGRES_VAULTWARDEN_PASSWORD', 'VAULTWARDEN_ADMIN_TOKEN'],
    },
  },
  devices: {
    // A rooted Android phone over adb, running crosvm.
    phone: { transport: 'adb', hypervisor: 'crosvm', arch: 'aarch64' },
    // A Linux box over ssh, running qemu.
    // box: { transport: 'ssh', host: 'box.lan', user: 'root', hypervisor: 'qemu' },
  },
});
