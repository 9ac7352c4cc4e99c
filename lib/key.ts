// The task key: every meaningful input of a task, each part named so `sovereign why` can say which one changed.
import { join } from 'node:path';
import { canonicalJson, flatJson, hashDir, sha256, type StatCache } from './hash.ts';
import type { Device } from './config.ts';
import type { KeyInputs } from './task.ts';
import { toolVersions } from './tools.ts';
import { UserError } from './error.ts';
import { isObject } from './guards.ts';

/** Bump when the key's composition changes: every key changes with it. */
export const SCHEMA_VERSION = 2;

/** Named parts of a key, in a stable order. */
export type KeyParts = Record<string, string>;

export interface KeySources {
  root: string;
  stat: StatCache;
  toolMemo: Record<string, string>;
}

/**
 * Parts of a task's key. Never absolute paths, times, undeclared environment or secrets: keys must
 * match across machines and checkouts so caches can be shared.
 */
export async function keyParts(
  task: { stepName: string; version: number; kind: string; device?: Device },
  inputs: KeyInputs,
  depOutputs: Record<string, string>,
  src: KeySources,
): Promise<KeyParts> {
  // A dictionary from the start (no prototype): names like `dep:svc42:image` are new for every service, and each new
  // name on an ordinary object grows a shape tree shared by all of them (superlinear at thousands of services).
  const parts = dictionary<string>();
  // A new key layout must not collide with keys of the old one.
  parts.schema = String(SCHEMA_VERSION);
  // The step's implementation: a new version of `rootfs` may produce different bytes from the same inputs.
  parts.step = `${task.stepName}@${task.version}`;
  // Only the resolved config fields this step reads, so editing vault's entry leaves sql's keys alone;
  // one part per field, so `sovereign why` can name the field that changed.
  const config = inputs.config ?? null;
  if (isObject(config)) {
    for (const [field, value] of Object.entries(config).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) parts[`config.${field}`] = hashOfJson(canonicalJson(value ?? null));
  } else parts.config = hashOfJson(canonicalJson(config));
  // Effects act on one device: pushing to the phone is not pushing to the box. Identity, not credentials.
  if (task.device && (task.kind === 'effect' || task.kind === 'always')) {
    parts.device = deviceHash(task.device);
  }
  // Input files by content (paths relative to the repo, so another checkout gets the same key).
  for (const f of inputs.files ?? []) {
    if ('file' in f) {
      const h = await src.stat.hashFile(join(src.root, f.file));
      if (h === undefined && !f.optional) throw new UserError(`missing input file ${f.file}`, { code: 'config', hint: 'create it, or check the service dir in the config' });
      parts[`file:${f.file}`] = h ?? 'absent';
    } else {
      parts[`dir:${f.dir}`] = await hashDir(join(src.root, f.dir), src.stat, f.ignoreFile).catch(() => {
        throw new UserError(`missing input folder ${f.dir}`, { code: 'config', hint: 'create it, or check the service dir in the config' });
      });
    }
  }
  // Tools whose version shapes the output (e.g. mke2fs): a new mke2fs may lay out a different image.
  if (inputs.tools?.length) {
    const tools = await toolVersions(inputs.tools, src.toolMemo);
    for (const [name, v] of Object.entries(tools)) parts[`tool:${name}`] = v;
  }
  // Dependencies by their output hash, not their key: if a dependency re-runs and produces the same
  // bytes, this key is unchanged (early cutoff).
  for (const id of Object.keys(depOutputs).sort()) parts[`dep:${id}`] = depOutputs[id];
  return parts;
}

/** A device's identity part, hashed once per device rather than once per task (15,000 effects at 5,000 services). */
const deviceHashes = new WeakMap<Device, string>();
function deviceHash(device: Device): string {
  let h = deviceHashes.get(device);
  if (h === undefined) {
    const { name, transport, host, port, user, serial, root, hypervisor, arch } = device;
    deviceHashes.set(device, (h = sha256(canonicalJson({ name, transport, host, port, user, serial, root, hypervisor, arch }))));
  }
  return h;
}

/** Config values repeat across tasks (the same suite, `null` for every step without config): each is hashed once. */
const jsonHashes = new Map<string, string>();
function hashOfJson(json: string): string {
  let h = jsonHashes.get(json);
  if (h === undefined) {
    if (jsonHashes.size >= 10_000) jsonHashes.clear();
    jsonHashes.set(json, (h = sha256(json)));
  }
  return h;
}

/** An object without prototype, for names that differ per service or task (see keyParts). */
export const dictionary = <T>(): Record<string, T> => Object.create(null) as Record<string, T>;

export const keyOf = (parts: KeyParts) => sha256(flatJson(parts));

/** Names the parts that differ between two part sets. */
export function diffParts(before: KeyParts, now: KeyParts): string[] {
  const names = new Set([...Object.keys(before), ...Object.keys(now)]);
  const label = (n: string) => (n.startsWith('config.') ? `config field '${n.slice(7)}'` : n);
  return [...names].filter((n) => before[n] !== now[n]).map((n) => (before[n] === undefined ? `${label(n)} (new)` : now[n] === undefined ? `${label(n)} (removed)` : label(n)));
}
