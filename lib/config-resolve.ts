// Validating a config once at the edge: raw `sovereign.config.ts` export to a Config with defaults, or errors naming each field.
import { isIP } from 'node:net';
import type { Result } from './error.ts';
import { err, ok, UserError } from './error.ts';
import type { BaseSource, Config, Device, Exposure, KernelSource, RemoteCacheInput, Service } from './config.ts';
import { checkAcrossServices } from './config-checks.ts';
import { hintNames } from './did-you-mean.ts';
import { resolveUpstream } from './upstream/source.ts';
import { resolveChecks } from './vm/checks.ts';
import { isObject } from './guards.ts';

const SIZE_UNITS: Record<string, number> = { B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/**
 * Parses `512M`, `4G`, `1GiB`, `100B` into bytes; undefined when malformed. The unit is required: a bare
 * `512` (bytes? MiB?) is refused rather than guessed (it used to make a 512-byte file system).
 */
export function parseSize(text: string): number | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^(\d+)\s*(?:(B)|([KMGT])(?:i?B)?)$/i.exec(text.trim());
  return m ? Number(m[1]) * SIZE_UNITS[(m[2] ?? m[3]).toUpperCase()] : undefined;
}

const NAME = /^[a-z][a-z0-9-]*$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export type Issue = { field: string; problem: string; hint?: string };
export type Bad = (field: string, problem: string, hint?: string) => void;

/** Validates raw config once, filling defaults; every problem names the field. */
export function resolveConfig(input: unknown, file: string, root?: string): Result<Config, UserError> {
  const issues: Issue[] = [];
  const bad = (field: string, problem: string, hint?: string) => issues.push({ field, problem, hint });
  if (!isObject(input)) return err(new UserError(`${file}: the default export must be defineConfig({...}), got ${describe(input)}`, { code: 'config', hint: 'export default defineConfig({ services: { ... } })' }));
  const raw = input as Record<string, unknown>;
  for (const k of Object.keys(raw)) if (!['services', 'devices', 'defaultDevice', 'builder', 'cache'].includes(k)) bad(k, 'is not a known field', 'known: services, devices, defaultDevice, builder, cache');

  const services = new Map<string, Service>();
  if (!isObject(raw.services) || Object.keys(raw.services).length === 0) bad('services', 'must declare at least one service');
  else {
    let index = 0;
    for (const [name, s] of Object.entries(raw.services as Record<string, unknown>)) {
      index++;
      const svc = resolveService(name, s, index, bad);
      if (svc) services.set(name, svc);
    }
    for (const svc of services.values()) {
      const f = `services.${svc.name}`;
      for (const d of svc.dependsOn) if (!services.has(d)) bad(`${f}.dependsOn`, `names unknown service '${d}'`, hintNames(d, services.keys()));
      const from = 'from' in svc.kernel ? svc.kernel.from : undefined;
      if (from !== undefined) {
        const owner = services.get(from);
        if (!owner) bad(`${f}.kernel.from`, `names unknown service '${from}'`, hintNames(from, services.keys()));
        else if ('from' in owner.kernel) bad(`${f}.kernel.from`, `'${from}' itself takes its kernel from '${owner.kernel.from}'`, `point at the service that owns the kernel`);
      }
      const db = svc.checks.postgres?.service;
      if (db !== undefined && !services.has(db)) bad(`${f}.checks.postgres.service`, `names unknown service '${db}'`, hintNames(db, services.keys()));
      const baseFrom = svc.base && 'from' in svc.base ? svc.base.from : undefined;
      if (baseFrom !== undefined) {
        const owner = services.get(baseFrom);
        if (!owner) bad(`${f}.base.from`, `names unknown service '${baseFrom}'`, hintNames(baseFrom, services.keys()));
        else if (!owner.base || 'from' in owner.base) bad(`${f}.base.from`, `'${baseFrom}' has no base of its own`);
      }
    }
    checkAcrossServices(services, root, bad);
  }

  const devices = new Map<string, Device>();
  devices.set('local', { name: 'local', transport: 'local', hypervisor: 'qemu', root: '.sovereign/devices/local', arch: 'x86_64' });
  if (raw.devices !== undefined) {
    if (!isObject(raw.devices)) bad('devices', 'must be an object of named devices');
    else for (const [name, d] of Object.entries(raw.devices as Record<string, unknown>)) {
      const dev = resolveDevice(name, d, bad);
      if (dev) devices.set(name, dev);
    }
  }
  const defaultDevice = raw.defaultDevice ?? 'local';
  if (typeof defaultDevice !== 'string' || !devices.has(defaultDevice)) bad('defaultDevice', `names unknown device '${String(defaultDevice)}'`, hintNames(String(defaultDevice), devices.keys()));
  const builder = raw.builder ?? 'docker';
  if (builder !== 'docker' && builder !== 'podman') bad('builder', `must be 'docker' or 'podman', got ${JSON.stringify(builder)}`);

  let cache: Config['cache'] = { dir: '.sovereign/cache' };
  if (raw.cache !== undefined) {
    if (!isObject(raw.cache)) bad('cache', 'must be an object');
    else {
      const c = raw.cache as Record<string, unknown>;
      if (c.dir !== undefined && typeof c.dir !== 'string') bad('cache.dir', 'must be a path');
      cache = { dir: (c.dir as string | undefined) ?? cache.dir };
      if (c.remote !== undefined) {
        const r = c.remote as Record<string, unknown>;
        if (!isObject(r) || typeof r.url !== 'string' || !/^https?:\/\//.test(r.url)) bad('cache.remote.url', 'must be an http(s) URL', "e.g. remote: { url: 'http://127.0.0.1:3000', team: 'me' }");
        else {
          if ('token' in r) bad('cache.remote.token', 'tokens never go in the config file', 'set SOVEREIGN_REMOTE_CACHE_TOKEN (or TURBO_TOKEN) in the environment');
          const mode = r.mode ?? 'read-write';
          if (!['off', 'read', 'read-write'].includes(mode as string)) bad('cache.remote.mode', `must be off, read or read-write, got ${JSON.stringify(mode)}`);
          if (r.maxUploadSize !== undefined && parseSize(r.maxUploadSize as string) === undefined) bad('cache.remote.maxUploadSize', `is not a size: ${JSON.stringify(r.maxUploadSize)}`, 'e.g. 1G');
          cache.remote = { ...(r as unknown as RemoteCacheInput), url: r.url, mode: mode as 'off' | 'read' | 'read-write' };
        }
      }
    }
  }
  if (issues.length) {
    const lines = issues.map((i) => `  ${i.field}: ${i.problem}${i.hint ? ` (hint: ${i.hint})` : ''}`);
    return err(new UserError(`invalid config in ${file}:\n${lines.join('\n')}`, { code: 'config' }));
  }
  return ok({ services, devices, defaultDevice: defaultDevice as string, builder: builder as 'docker' | 'podman', cache, file });
}

function resolveService(name: string, s: unknown, index: number, bad: (f: string, p: string, h?: string) => void): Service | undefined {
  const f = `services.${name}`;
  if (!NAME.test(name)) bad(f, 'service names are lower-case letters, digits and dashes, starting with a letter');
  // The name makes the VM's network interface `vm_<name>`, and Linux interface names have 15 bytes at most.
  if (name.length > 12) bad(f, `service names have at most 12 characters ('${name}' has ${name.length})`, 'it names the VM\'s network interface vm_<name>');
  if (!isObject(s)) { bad(f, 'must be an object'); return undefined; }
  const r = s as Record<string, unknown>;
  const known = ['displayName', 'dir', 'guestIp', 'ports', 'expose', 'readyMarker', 'failureMarkers', 'startTimeout', 'memory', 'cpus', 'rootfsSize', 'dataDiskSize', 'kernel', 'base', 'dependsOn', 'secrets', 'buildArgs', 'upstream', 'checks', 'platform', 'cmdline'];
  for (const k of Object.keys(r)) if (!known.includes(k)) bad(`${f}.${k}`, 'is not a known field', hintNames(k, known));
  const str = (k: string, required: boolean) => {
    const v = r[k];
    if (v === undefined) { if (required) bad(`${f}.${k}`, 'is required'); return undefined; }
    if (typeof v !== 'string' || v === '') { bad(`${f}.${k}`, `must be a non-empty string, got ${JSON.stringify(v)}`); return undefined; }
    return v;
  };
  const posInt = (k: string, def: number) => {
    const v = r[k] ?? def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) { bad(`${f}.${k}`, `must be a positive whole number, got ${JSON.stringify(v)}`); return def; }
    return v;
  };
  const size = (k: string, def: string) => {
    const v = (r[k] ?? def) as string;
    const n = parseSize(v);
    if (n === undefined) bad(`${f}.${k}`, `is not a size with a unit: ${JSON.stringify(v)}`, typeof v === 'number' ? `write '${v}M' for ${v} MiB (sizes take a unit: K, M, G, T or B)` : "e.g. '512M' or '4G'");
    return n ?? 0;
  };
  const strings = (k: string) => {
    const v = r[k] ?? [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) { bad(`${f}.${k}`, 'must be a list of strings'); return []; }
    return v as string[];
  };
  const guestIp = str('guestIp', true);
  if (guestIp && !(IPV4.test(guestIp) && guestIp.split('.').every((o) => Number(o) <= 255))) bad(`${f}.guestIp`, `is not an IPv4 address: ${guestIp}`);
  const ports = r.ports ?? [];
  if (!Array.isArray(ports) || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) bad(`${f}.ports`, 'must be a list of TCP ports (1-65535)');
  const expose = resolveExpose(f, r.expose, Array.isArray(ports) ? ports : [], bad);
  const secrets = strings('secrets');
  for (const k of secrets) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) bad(`${f}.secrets`, `'${k}' is not a valid .env key name`);
  // Without the key declared no run sends it, and the guest's init stops at the first boot that needs a login.
  if (isObject(r.upstream) && 'TAILSCALE_IMAGE' in r.upstream && !secrets.includes('TAILSCALE_AUTHKEY')) {
    bad(`${f}.secrets`, "must list 'TAILSCALE_AUTHKEY' when upstream.TAILSCALE_IMAGE is set (the VM logs in to the tailnet with it)", "add 'TAILSCALE_AUTHKEY' to secrets and TAILSCALE_AUTHKEY=… to .env (README \"Tailscale\")");
  }
  const buildArgs = r.buildArgs ?? {};
  if (!isObject(buildArgs) || Object.values(buildArgs).some((v) => typeof v !== 'string')) bad(`${f}.buildArgs`, 'must map names to strings');
  const kernel = r.kernel as KernelSource | undefined;
  if (!isObject(kernel)) bad(`${f}.kernel`, 'is required', "{ url, sha256 } | { path } | { deb } | { from: 'sql' }");
  else if ('url' in kernel) {
    if (typeof kernel.url !== 'string' || !/^https?:\/\//.test(kernel.url)) bad(`${f}.kernel.url`, 'must be an http(s) URL');
    if (typeof kernel.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(kernel.sha256)) bad(`${f}.kernel.sha256`, 'must be 64 lower-case hex digits', 'sha256sum the kernel and paste it here');
  } else if ('path' in kernel) { if (typeof kernel.path !== 'string') bad(`${f}.kernel.path`, 'must be a path'); }
  else if ('deb' in kernel) { if (typeof kernel.deb !== 'string') bad(`${f}.kernel.deb`, 'must be a Debian package name'); }
  else if ('from' in kernel) { if (typeof kernel.from !== 'string') bad(`${f}.kernel.from`, 'must name a service'); }
  else bad(`${f}.kernel`, 'must have one of url+sha256, path, deb or from');
  const base = r.base as BaseSource | undefined;
  if (base !== undefined && !(isObject(base) && (('from' in base && typeof base.from === 'string') || ('debootstrap' in base && isObject(base.debootstrap) && typeof base.debootstrap.suite === 'string')))) {
    bad(`${f}.base`, "must be { debootstrap: { suite } } or { from: '<service>' }");
  }
  const platform = str('platform', false);
  const dir = str('dir', false);
  if (dir && (dir.startsWith('/') || dir.split('/').includes('..'))) bad(`${f}.dir`, 'must be a folder inside the repo (relative, no ..)', `e.g. 'vm/${name}'`);
  // The repo root as a build context would carry .env (secrets) and .sovereign/ into the image, its key and the cache.
  else if (dir !== undefined && dir.split('/').every((p) => p === '' || p === '.')) bad(`${f}.dir`, 'must not be the repo root: the build context would include .env and .sovereign/', `e.g. 'vm/${name}'`);
  return {
    name,
    displayName: str('displayName', true) ?? name,
    dir: dir ?? `vm/${name}`,
    guestIp: guestIp ?? '',
    ports: Array.isArray(ports) ? (ports as number[]) : [],
    expose,
    readyMarker: str('readyMarker', true) ?? '',
    failureMarkers: r.failureMarkers === undefined ? ['Kernel panic'] : strings('failureMarkers'),
    startTimeout: posInt('startTimeout', 90),
    memory: posInt('memory', 512),
    cpus: posInt('cpus', 1),
    rootfsSize: size('rootfsSize', '512M'),
    dataDiskSize: size('dataDiskSize', '4G'),
    kernel: kernel ?? { path: '' },
    base,
    dependsOn: strings('dependsOn'),
    secrets,
    buildArgs: (isObject(buildArgs) ? buildArgs : {}) as Record<string, string>,
    upstream: resolveUpstream(`${f}.upstream`, r.upstream, bad),
    checks: resolveChecks(`${f}.checks`, r.checks, ports, bad),
    ...(platform ? { platform } : {}),
    cmdline: str('cmdline', false) ?? '',
    index,
  };
}

const isIpv4 = (v: string) => IPV4.test(v) && v.split('.').every((o) => Number(o) <= 255);
const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;

function resolveExpose(f: string, raw: unknown, ports: unknown[], bad: (f: string, p: string, h?: string) => void): Exposure[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) { bad(`${f}.expose`, 'must be a list of ports', 'e.g. expose: [443] or [{ port: 443, address: \'192.168.1.20\' }]'); return []; }
  const out: Exposure[] = [];
  raw.forEach((e, i) => {
    const at = `${f}.expose[${i}]`;
    const o = (typeof e === 'number' ? { port: e } : e) as Record<string, unknown>;
    if (!isObject(o) || !isPort(o.port)) { bad(at, `must be a port or { port, hostPort?, address? }, got ${JSON.stringify(e)}`); return; }
    if (!ports.includes(o.port)) { bad(at, `port ${o.port} is not one of the service's ports (${ports.join(', ') || 'none'})`, 'expose only ports listed in ports'); return; }
    for (const k of Object.keys(o)) if (!['port', 'hostPort', 'address'].includes(k)) bad(`${at}.${k}`, 'is not a known field', 'known: port, hostPort, address');
    const hostPort = o.hostPort ?? o.port;
    if (!isPort(hostPort)) { bad(`${at}.hostPort`, `must be a TCP port (1-65535), got ${JSON.stringify(hostPort)}`); return; }
    const address = o.address ?? '0.0.0.0';
    if (typeof address !== 'string' || !isIpv4(address)) { bad(`${at}.address`, `is not an IPv4 address: ${JSON.stringify(address)}`, "the device's LAN address, e.g. '192.168.1.20'"); return; }
    if (out.some((x) => x.hostPort === hostPort)) { bad(at, `host port ${hostPort} is exposed twice`); return; }
    out.push({ port: o.port, hostPort, address });
  });
  return out;
}

function resolveDevice(name: string, d: unknown, bad: (f: string, p: string, h?: string) => void): Device | undefined {
  const f = `devices.${name}`;
  if (!isObject(d)) { bad(f, 'must be an object'); return undefined; }
  const r = d as Record<string, unknown>;
  const transport = r.transport;
  if (transport !== 'adb' && transport !== 'ssh' && transport !== 'local') { bad(`${f}.transport`, `must be adb, ssh or local, got ${JSON.stringify(transport)}`); return undefined; }
  if (transport === 'ssh' && typeof r.host !== 'string') bad(`${f}.host`, 'is required for ssh devices');
  const hypervisor = r.hypervisor ?? (transport === 'adb' ? 'crosvm' : 'qemu');
  if (hypervisor !== 'crosvm' && hypervisor !== 'qemu') bad(`${f}.hypervisor`, `must be crosvm or qemu, got ${JSON.stringify(hypervisor)}`);
  const arch = r.arch ?? (transport === 'adb' ? 'aarch64' : 'x86_64');
  if (arch !== 'x86_64' && arch !== 'aarch64') bad(`${f}.arch`, `must be x86_64 or aarch64, got ${JSON.stringify(arch)}`);
  if (r.port !== undefined && (!Number.isInteger(r.port) || (r.port as number) < 1)) bad(`${f}.port`, 'must be a TCP port');
  const root = (r.root as string | undefined) ?? (transport === 'local' ? `.sovereign/devices/${name}` : '/data/sovereign');
  if (transport !== 'local' && !root.startsWith('/')) bad(`${f}.root`, 'must be an absolute path on the device');
  const dns = resolveDns(f, r.dns, hypervisor, bad);
  const { transport: _t, hypervisor: _h, arch: _a, root: _r, dns: _d, ...rest } = r;
  return { ...(rest as Partial<Device>), name, transport, hypervisor: hypervisor as Device['hypervisor'], arch: arch as Device['arch'], root, ...(dns ? { dns } : {}) };
}

/**
 * The guests' resolvers (`dns`: one address or a list). A crosvm guest has none unless told (nothing answers DNS on
 * the bridge's .1), so it gets the original CLI's `nameserver 8.8.8.8`; a qemu guest keeps its user-mode network's
 * resolver (10.0.2.3, lib/vm/network.ts) unless `dns` is set. At most 3: glibc and musl read no more.
 */
const CROSVM_DNS = ['8.8.8.8'];
function resolveDns(f: string, raw: unknown, hypervisor: unknown, bad: Bad): string[] | undefined {
  if (raw === undefined) return hypervisor === 'crosvm' ? CROSVM_DNS : undefined;
  const list: unknown = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(list) || list.length === 0 || list.length > 3 || list.some((a) => typeof a !== 'string' || isIP(a) === 0)) {
    bad(`${f}.dns`, `must be one to three IPv4 or IPv6 addresses, got ${JSON.stringify(raw)}`, "e.g. dns: '8.8.8.8' or ['1.1.1.1', '2606:4700:4700::1111']");
    return undefined;
  }
  return list as string[];
}

const describe = (v: unknown) => (v instanceof Promise ? 'a Promise (use top-level await, or export the object)' : v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v);

