// Service checks `test` runs beyond "the port answers": a web UI's HTTP status and the service's own database login.
import { shQuote } from '../device/shell.ts';
import { isObject } from '../guards.ts';

export interface ServiceChecks {
  /** GET <http|https>://<address of port><path> must answer one of `expect` (redirects are not followed). */
  http?: { port: number; path: string; tls: boolean; expect: number[] };
  /** A login as `user` to `database` on `service`'s PostgreSQL, with the password from the `.env` key `passwordSecret`. */
  postgres?: { service: string; user: string; database: string; passwordSecret: string };
}

type Bad = (field: string, problem: string, hint?: string) => void;
const isPort = (v: unknown) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;

/** Validates `services.<name>.checks`; `ports` are the service's ports (the HTTP port must be one). */
export function resolveChecks(field: string, raw: unknown, ports: unknown, bad: Bad): ServiceChecks {
  if (raw === undefined) return {};
  if (!isObject(raw)) { bad(field, 'must be an object', "e.g. { http: { port: 443, path: '/alive' } }"); return {}; }
  const out: ServiceChecks = {};
  for (const k of Object.keys(raw)) if (k !== 'http' && k !== 'postgres') bad(`${field}.${k}`, 'is not a known check', 'known: http, postgres');
  const h = raw.http;
  if (h !== undefined) {
    if (!isObject(h) || !isPort(h.port)) bad(`${field}.http.port`, 'must be a TCP port');
    else {
      if (!Array.isArray(ports) || !ports.includes(h.port)) bad(`${field}.http.port`, `${h.port} is not among the service's ports`);
      const path = h.path ?? '/';
      if (typeof path !== 'string' || !path.startsWith('/') || /[\s'"\\]/.test(path)) bad(`${field}.http.path`, 'must be a URL path starting with /');
      const expect = h.expect ?? [200, 302, 303];
      if (!Array.isArray(expect) || expect.some((c) => !Number.isInteger(c) || c < 100 || c > 599)) bad(`${field}.http.expect`, 'must be a list of HTTP status codes');
      out.http = { port: h.port as number, path: String(path), tls: h.tls === undefined ? h.port === 443 : h.tls === true, expect: expect as number[] };
    }
  }
  const p = raw.postgres;
  if (p !== undefined) {
    const str = (k: string) => (isObject(p) && typeof p[k] === 'string' && p[k] !== '' ? (p[k] as string) : undefined);
    if (!str('service') || !str('user') || !str('passwordSecret')) bad(`${field}.postgres`, 'needs service, user and passwordSecret', "e.g. { service: 'sql', user: 'forgejo', passwordSecret: 'POSTGRES_FORGEJO_PASSWORD' }");
    else out.postgres = { service: str('service')!, user: str('user')!, database: str('database') ?? str('user')!, passwordSecret: str('passwordSecret')! };
  }
  return out;
}

/**
 * Prints the HTTP status of `url` as three digits, with whichever client the device has: curl, else (busybox)
 * wget's first response line. The certificate is not checked: the guests make self-signed ones at first boot.
 */
export function httpStatusScript(url: string): string {
  return `url=${shQuote(url)}
if command -v curl >/dev/null 2>&1; then exec curl -sk -o /dev/null --max-time 10 -w '%{http_code}' "$url"; fi
if command -v wget >/dev/null 2>&1; then w=wget; else w="busybox wget"; fi
# wget follows redirects and prints every response with -S: the first status line is the one asked about.
timeout 10 $w -S -O /dev/null --no-check-certificate "$url" 2>&1 | sed -n 's/^ *HTTP\\/[0-9.]* \\([0-9][0-9][0-9]\\).*/\\1/p' | head -n 1`;
}
