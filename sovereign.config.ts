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
      kernel: { deb: 'linux-image-cloud-amd64' },
      base: { debootstrap: { suite: 'bookworm', variant: 'minbase' } },
      secrets: ['POSTGRES_PASSWORD', 'POSTGRES_FORGEJO_PASSWORD', 'POSTGRES_VAULTWARDEN_PASSWORD'],
    },
    forge: {
      displayName: 'Forgejo',
      guestIp: '192.168.100.3',
      ports: [443],
      readyMarker: 'INIT COMPLETE',
      startTimeout: 120,
      memory: 1024,
      cpus: 2,
      kernel: { from: 'sql' },
      base: { debootstrap: { suite: 'bookworm', variant: 'minbase' } },
      dependsOn: ['sql'],
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
