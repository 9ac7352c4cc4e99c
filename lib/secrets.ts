// Secrets: `.env` parsed (never sourced or evaluated), each service's declared keys picked, the device file rendered.
import { promises as fs } from 'node:fs';
import { VM_FILES } from './vm/files.ts';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from './fsutil.ts';
import type { Service } from './config.ts';
import { UserError } from './error.ts';

/** File name of a service's secrets on the device, next to its disks (mode 0600). */
export const SECRETS_FILE = VM_FILES.secrets;
/** The guest attaches the file as a raw disk, so it is padded to whole 4 KiB blocks. */
const BLOCK = 4096;

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/;
const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\', $: '$', '`': '`' };

/** A parsed `.env`: key -> value, plus where it came from (for error messages). */
export class EnvFile extends Map<string, string> {
  constructor(readonly file: string, readonly exists: boolean, entries?: Iterable<[string, string]>) {
    super(entries);
  }
}

/**
 * KEY=VALUE lines; `#` comments; optional `export `; 'single quotes' literal; "double quotes" with
 * \n \r \t \" \\ \$ escapes; unquoted values end at ` #`. `$(...)`, `${X}` and backticks stay text.
 * Errors name the file and line, never the value (it may be a secret).
 */
export function parseEnv(text: string, file = '.env'): EnvFile {
  const env = new EnvFile(file, true);
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (/^\s*(#|$)/.test(line)) return;
    const bad = (why: string) => new UserError(`${file}:${i + 1}: ${why}`, { code: 'environment', hint: 'lines are KEY=VALUE; quote values with spaces or # in them' });
    const m = LINE.exec(line);
    if (!m) throw bad('expected KEY=VALUE');
    const [, key, rest] = m;
    const value = parseValue(rest);
    if (value === undefined) throw bad(`the value of ${key} has an unterminated quote or text after its closing quote`);
    env.set(key, value);
  });
  return env;
}

function parseValue(rest: string): string | undefined {
  const q = rest[0];
  if (q !== "'" && q !== '"') return rest.replace(/(^|\s+)#.*$/, '').trim();
  let out = '';
  for (let i = 1; i < rest.length; i++) {
    const c = rest[i];
    if (c === q) return /^\s*(#.*)?$/.test(rest.slice(i + 1)) ? out : undefined;
    if (q === '"' && c === '\\' && i + 1 < rest.length) {
      const next = rest[++i];
      out += ESCAPES[next] ?? `\\${next}`;
    } else out += c;
  }
  return undefined;
}

/** Reads and parses the file at `path`; a missing file is an empty EnvFile (an error only once a key is needed). */
export async function readEnvFile(path: string): Promise<EnvFile> {
  const text = await fs.readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  return text === undefined ? new EnvFile(path, false) : parseEnv(text, path);
}

/**
 * Only the keys `service` declares, in declared order, from a parsed env or from `<root>/.env` when given
 * the repo root. A missing key is an error naming key, service and file. A service declaring none needs no .env.
 */
export async function secretsFor(service: Service, from: string | Map<string, string>): Promise<Record<string, string>> {
  if (service.secrets.length === 0) return {};
  const env = typeof from === 'string' ? await readEnvFile(join(from, '.env')) : from;
  const file = env instanceof EnvFile ? env.file : '.env';
  const missing = service.secrets.filter((k) => !env.has(k));
  if (missing.length) {
    const what = env instanceof EnvFile && !env.exists ? `${file} does not exist` : `${file} has no ${missing.join(', ')}`;
    throw new UserError(`service '${service.name}' needs ${missing.join(', ')} but ${what}`, {
      code: 'environment',
      hint: `add ${missing.map((k) => `${k}=...`).join(' and ')} to ${file}, or drop ${missing.length > 1 ? 'them' : 'it'} from services.${service.name}.secrets`,
    });
  }
  return Object.fromEntries(service.secrets.map((k) => [k, env.get(k)!]));
}

/** Why the guest's line-based secrets file cannot carry this value (a `\n` escape in .env makes one), or undefined. */
export function unsendable(key: string, value: string): string | undefined {
  return /[\n\r\0]/.test(value) ? `the value of ${key} contains a line break or NUL byte, which the guest's KEY=VALUE file cannot carry` : undefined;
}

/** KEY=VALUE lines, NUL-padded to whole 4 KiB blocks (at least one): the guest reads it as a raw disk. */
export function renderSecretsFile(values: Record<string, string>): Buffer {
  for (const [k, v] of Object.entries(values)) {
    if (!KEY.test(k)) throw new UserError(`secret name '${k}' is not a valid key`);
    const why = unsendable(k, v);
    if (why) throw new UserError(why, { code: 'environment', hint: `put ${k} on one line in .env` });
  }
  const text = Buffer.from(Object.entries(values).map(([k, v]) => `${k}=${v}\n`).join(''), 'utf8');
  const size = Math.max(BLOCK, Math.ceil(text.length / BLOCK) * BLOCK);
  const out = Buffer.alloc(size);
  text.copy(out);
  return out;
}

/**
 * Secrets only their owner can make, so never generated (a random value would be wrong, not merely unknown):
 * key -> where to get one. A missing one stops the run before anything is sent.
 */
export const PROVIDED_SECRETS: Readonly<Record<string, string>> = {
  TAILSCALE_AUTHKEY: 'an auth key from the Tailscale admin console (Settings, Keys); the VM uses it only for its first login',
};

/** The error for declared keys that are missing and cannot be generated, or undefined when there are none. */
export function unprovided(service: Service, missing: string[], envPath: string): UserError | undefined {
  const keys = missing.filter((k) => k in PROVIDED_SECRETS);
  if (!keys.length) return undefined;
  return new UserError(`${keys.join(', ')} (declared by ${service.name}) is not in ${envPath}, and sovereign cannot make it`, {
    code: 'environment',
    hint: keys.map((k) => `add ${k}=… to .env: ${PROVIDED_SECRETS[k]}`).join('; '),
  });
}

/**
 * The declared keys of `service`, generating the missing ones (random, 32 characters) into `<root>/.env`
 * (mode 0600) when `generate` is set, so a fresh checkout deploys without hand-made passwords.
 * Returns the names it generated, never their values.
 */
export async function ensureSecrets(service: Service, root: string, generate: boolean): Promise<{ values: Record<string, string>; generated: string[] }> {
  const path = join(root, '.env');
  const env = await readEnvFile(path);
  const missing = service.secrets.filter((k) => !env.has(k));
  // Before the no-generate return: a check (push-secrets compares .env with the device's file) or a dry run must stop
  // here too, or a device whose file lacks the key as .env does is called up to date and the VM boots without it.
  const cannot = unprovided(service, missing, path);
  if (cannot) throw cannot;
  if (missing.length && !generate) return { values: Object.fromEntries(service.secrets.filter((k) => env.has(k)).map((k) => [k, env.get(k)!])), generated: [] };
  if (missing.length) {
    const before = env.exists ? await fs.readFile(path, 'utf8') : '# Secrets for sovereign (KEY=VALUE, never committed). Generated values can be replaced.\n';
    const added = missing.map((k) => `${k}=${randomBytes(24).toString('base64url')}`).join('\n');
    await writeFileAtomic(await envWriteTarget(path), `${before}${before.endsWith('\n') ? '' : '\n'}${added}\n`, 0o600);
  }
  return { values: await secretsFor(service, root), generated: missing };
}

/**
 * Where keys written to `path` go: a symlinked .env (e.g. into a secrets folder) is written through and stays a link,
 * also when the file it names does not exist yet. A link into a folder that is missing (a drive not mounted) is
 * refused: passwords generated beside it would stand in for the real ones.
 */
export async function envWriteTarget(path: string): Promise<string> {
  let target = path;
  for (let hops = 0; ; hops++) {
    const link = await fs.readlink(target).catch((e: NodeJS.ErrnoException) => { if (e.code === 'EINVAL' || e.code === 'ENOENT') return undefined; throw e; });
    if (link === undefined) break;
    if (hops === 40) throw new UserError(`${path}: too many levels of symbolic links`, { code: 'environment', hint: 'point .env at a file' });
    // A relative link is read from the folder the link really is in, as the kernel does: through a symlinked folder,
    // `..` is that folder's parent, not the parent of the path's text.
    target = resolve(await fs.realpath(dirname(target)).catch(() => dirname(target)), link);
  }
  const folder = dirname(target);
  if (target !== path && !(await fs.stat(folder).then((st) => st.isDirectory(), () => false))) {
    throw new UserError(`${path} links to ${target}, but the folder ${folder} does not exist: the keys to generate have nowhere to go`, {
      code: 'environment', hint: `create or mount ${folder} (sovereign does not make it), or make .env a file`,
    });
  }
  return target;
}
