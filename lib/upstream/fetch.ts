// Fetching one pinned upstream image and checking it against the lock file: record on first fetch, fail closed after.
import { isAbsolute, join } from 'node:path';
import { UserError } from '../error.ts';
import { imageExists, loadImage, pullImage, removeImage, type BuilderKind } from '../build/builder.ts';
import { LOCK_FILE, lockedId, recordId } from './lock.ts';
import { pullRef, registryOf, type UpstreamImage } from './source.ts';

export interface FetchOptions {
  kind: BuilderKind;
  /** Repo root: the lock file and relative `file` paths live here. */
  root: string;
  service: string;
  upstream: UpstreamImage;
  platform: string;
  signal?: AbortSignal;
  log(line: string): void;
}

/** Resolves the verified image id of `o.upstream` for `o.platform`. */
export async function fetchUpstream(o: FetchOptions): Promise<string> {
  const u = o.upstream;
  const key = `${o.service}.${u.arg}`;
  const locked = await lockedId(o.root, key, u.image, o.platform);
  // The builder's store is content-addressed: an image already there under the locked id is the locked image.
  if (locked && (await imageExists(o.kind, locked))) return locked;

  const source = u.file ? `file ${u.file}` : pullRef(u);
  const from = source === u.image ? '' : ` from ${source}`;
  o.log(`fetching ${u.image} (${o.platform})${from}`);
  let got: string;
  try {
    got = u.file ? await loadImage(o.kind, isAbsolute(u.file) ? u.file : join(o.root, u.file), o.signal) : await pullImage(o.kind, pullRef(u), o.platform, o.signal);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    const field = `services.${o.service}.upstream.${u.arg}`;
    throw new UserError(`cannot fetch ${u.image} for ${o.service} (${u.arg})${from}`, {
      code: 'environment',
      details: e.details,
      hint: u.file
        ? `check the file, or set ${field} to { image: '${u.image}', mirror: '<registry host:port>' }`
        : `this machine cannot reach ${u.mirror ?? registryOf(u.image)}: set ${field} to { image: '${u.image}', mirror: '<registry host:port>' } (a registry holding the same image) or { image: '${u.image}', file: '<docker save archive>' }`,
    });
  }
  if (locked && got !== locked) {
    // Fail closed: the rejected download must not stay under the pinned name for anything else to pick up.
    await removeImage(o.kind, u.file ? got : pullRef(u));
    throw new UserError(`${u.image} (${o.platform})${from} does not match ${LOCK_FILE}: expected ${locked}, got ${got}`, {
      hint: `the source served other bytes than the first fetch recorded. Use a trusted source; only if upstream re-published this tag on purpose, delete "${key}" from ${LOCK_FILE} to trust it anew`,
    });
  }
  if (!locked) {
    await recordId(o.root, key, u.image, o.platform, got);
    o.log(`recorded ${got} for ${u.image} (${o.platform}) in ${LOCK_FILE}: commit it`);
  } else o.log(`verified ${got} against ${LOCK_FILE}`);
  return got;
}
