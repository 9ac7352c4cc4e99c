// The configuration as users write it (ConfigInput, defineConfig) and as the engine reads it (Config); lib/config-resolve.ts turns one into the other.
import type { UpstreamImage, UpstreamInput } from './upstream/source.ts';
import type { ServiceChecks } from './vm/checks.ts';

// Where the rest of sovereign has always imported these from.
export { parseSize, resolveConfig } from './config-resolve.ts';
export { didYouMean } from './did-you-mean.ts';

/** Where a service's guest kernel comes from. */
export type KernelSource =
  /** Downloaded over HTTP(S) and verified against sha256 before it is stored. */
  | { url: string; sha256: string }
  /** A file in the repo (or an absolute path on this machine). */
  | { path: string }
  /**
   * A Debian package for the device's architecture, fetched with `apt-get download` (the machine's apt sources,
   * a private apt state), kernel cut out of it. `{arch}` becomes amd64 or arm64: `linux-image-cloud-{arch}`.
   */
  | { deb: string; file?: string }
  /** Use another service's kernel task: fetched once, shared. */
  | { from: string };

/** How a service's base image is produced when no registry is reachable. */
export type BaseSource =
  /** `debootstrap --variant=<variant> <suite>` then `docker import`; cached as its own task. */
  | { debootstrap: { suite: string; variant?: string; include?: string[] } }
  /** Use another service's base task. */
  | { from: string };

/**
 * A service port the owner reaches from other machines, on the device's LAN address: `443`, or
 * `{ port, hostPort?, address? }` (hostPort defaults to port; address to every address of the device).
 */
export type ExposeInput = number | { port: number; hostPort?: number; address?: string };

/** A resolved `expose` entry: guest `port` answers on the device at `address`:`hostPort` ('0.0.0.0': all). */
export interface Exposure { port: number; hostPort: number; address: string }

export interface ServiceInput {
  displayName: string;
  /** Payload folder with Dockerfile and init.sh (default `vm/<name>`). */
  dir?: string;
  guestIp: string;
  ports: number[];
  /** Ports (of `ports`) reachable from the device's LAN (default none: loopback forwards only). */
  expose?: ExposeInput[];
  readyMarker: string;
  /** Lines that mean the boot failed (default `Kernel panic`). */
  failureMarkers?: string[];
  /** Seconds to wait for the ready marker (default 90). */
  startTimeout?: number;
  /** MiB of guest memory (default 512). */
  memory?: number;
  cpus?: number;
  /** ext4 size of rootfs.img, e.g. `512M` (default). */
  rootfsSize?: string;
  /** size of the sparse data.img, e.g. `4G` (default). */
  dataDiskSize?: string;
  kernel: KernelSource;
  /** Base image built by a task of its own and passed to the Dockerfile as build arg BASE_IMAGE. */
  base?: BaseSource;
  /** Services that must be running and ready before this one starts. */
  dependsOn?: string[];
  /** Names of `.env` keys this VM receives (as a 0600 file on the device). */
  secrets?: string[];
  buildArgs?: Record<string, string>;
  /** Pinned upstream images by Dockerfile build arg (see lib/upstream/source.ts); verified against sovereign.lock.json. */
  upstream?: Record<string, UpstreamInput>;
  /** What `test` checks beyond open ports: an HTTP status, the service's own database login (lib/vm/checks.ts). */
  checks?: { http?: { port: number; path?: string; tls?: boolean; expect?: number[] }; postgres?: { service: string; user: string; database?: string; passwordSecret: string } };
  /** Target platform for the image build, e.g. `linux/amd64` (default: the device's arch). */
  platform?: string;
  /** Kernel command line additions. */
  cmdline?: string;
}

export type DeviceInput = (
  | { transport: 'adb'; serial?: string }
  | { transport: 'ssh'; host: string; user?: string; port?: number; identity?: string; strictHostKeyChecking?: 'yes' | 'accept-new' | 'no'; knownHosts?: string }
  | { transport: 'local' }
) & {
  hypervisor?: 'crosvm' | 'qemu';
  /** Device directory holding `vm/<service>/` (default `/data/sovereign`, or `.sovereign/device` for local). */
  root?: string;
  arch?: 'x86_64' | 'aarch64';
  /**
   * The guests' DNS resolvers: one IPv4/IPv6 address or a list (crosvm default `8.8.8.8`, the original's; qemu
   * default: its user-mode network's resolver, 10.0.2.3).
   */
  dns?: string | string[];
};

export interface RemoteCacheInput {
  /** Base URL of a Turborepo remote-cache server. The token comes from SOVEREIGN_REMOTE_CACHE_TOKEN / TURBO_TOKEN, never from here. */
  url: string;
  team?: string;
  slug?: string;
  mode?: 'off' | 'read' | 'read-write';
  /** Sign artifacts with HMAC-SHA256 (key from SOVEREIGN_REMOTE_CACHE_SIGNATURE_KEY / TURBO_REMOTE_CACHE_SIGNATURE_KEY). */
  signature?: boolean;
  /** Largest artifact uploaded, e.g. `1G`. */
  maxUploadSize?: string;
  timeoutMs?: number;
}

export interface ConfigInput {
  services: Record<string, ServiceInput>;
  devices?: Record<string, DeviceInput>;
  /** Device used when `--device` is not given (default `local`). */
  defaultDevice?: string;
  /** Image builder (default docker). */
  builder?: 'docker' | 'podman';
  cache?: { dir?: string; remote?: RemoteCacheInput };
}

/** Typed identity: lets `sovereign.config.ts` be checked by the editor. */
export function defineConfig(config: ConfigInput): ConfigInput {
  return config;
}

export interface Service {
  name: string;
  displayName: string;
  dir: string;
  guestIp: string;
  ports: number[];
  expose: Exposure[];
  readyMarker: string;
  failureMarkers: string[];
  startTimeout: number;
  memory: number;
  cpus: number;
  rootfsSize: number;
  dataDiskSize: number;
  kernel: KernelSource;
  base?: BaseSource;
  dependsOn: string[];
  secrets: string[];
  buildArgs: Record<string, string>;
  upstream: UpstreamImage[];
  checks: ServiceChecks;
  platform?: string;
  cmdline: string;
  /** Position in the config (1-based), used for the guest's network slot. */
  index: number;
}

export type Device = {
  name: string;
  transport: 'adb' | 'ssh' | 'local';
  hypervisor: 'crosvm' | 'qemu';
  root: string;
  arch: 'x86_64' | 'aarch64';
  /** The guests' resolvers: set on crosvm devices (default 8.8.8.8); on qemu only when configured (else slirp's). */
  dns?: string[];
  serial?: string;
  host?: string;
  user?: string;
  port?: number;
  identity?: string;
  strictHostKeyChecking?: 'yes' | 'accept-new' | 'no';
  knownHosts?: string;
};

export interface Config {
  services: Map<string, Service>;
  devices: Map<string, Device>;
  defaultDevice: string;
  builder: 'docker' | 'podman';
  cache: { dir: string; remote?: Required<Pick<RemoteCacheInput, 'url' | 'mode'>> & RemoteCacheInput };
  /** Path of the config file, relative to the repo root, for error messages. */
  file: string;
}
