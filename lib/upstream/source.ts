// Upstream images a service copies files from (Forgejo, Vaultwarden): the config shape, its validation, and where to fetch.

/**
 * One pinned upstream image, given to the Dockerfile as a build arg holding its verified image id.
 * `image` is the upstream reference with an exact version (`codeberg.org/forgejo/forgejo:11.0.15`); it names the
 * entry in the lock file whatever the source. `mirror` (a registry `host[:port][/prefix]` serving the same
 * repository path) or `file` (a `docker save` archive) fetch the same image from elsewhere.
 */
export type UpstreamInput = string | { image: string; mirror?: string; file?: string };

export interface UpstreamImage {
  /** The build arg that receives the image id, e.g. FORGEJO_IMAGE. */
  arg: string;
  /** The pinned upstream reference. */
  image: string;
  mirror?: string;
  file?: string;
}

const ARG = /^[A-Z][A-Z0-9_]*$/;
// [registry/]path[:tag][@sha256:digest]
const REF = /^(?:([a-z0-9.-]+(?::\d+)?)\/)?([a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*)(?::([\w][\w.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$/;

/** Validates `services.<name>.upstream`; every problem names its field. */
export function resolveUpstream(field: string, raw: unknown, bad: (f: string, p: string, h?: string) => void): UpstreamImage[] {
  if (raw === undefined) return [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) { bad(field, 'must map build arg names to images', "e.g. { FORGEJO_IMAGE: 'codeberg.org/forgejo/forgejo:11.0.15' }"); return []; }
  const out: UpstreamImage[] = [];
  for (const [arg, v] of Object.entries(raw as Record<string, unknown>)) {
    const f = `${field}.${arg}`;
    if (!ARG.test(arg)) bad(f, 'the name is the Dockerfile build arg: upper-case letters, digits and _');
    const spec = typeof v === 'string' ? { image: v } : (v as Record<string, unknown> | null);
    if (!spec || typeof spec !== 'object' || typeof spec.image !== 'string') { bad(f, "must be an image reference or { image, mirror?, file? }"); continue; }
    for (const k of Object.keys(spec)) if (!['image', 'mirror', 'file'].includes(k)) bad(`${f}.${k}`, 'is not a known field', 'known: image, mirror, file');
    const m = REF.exec(spec.image);
    if (!m) bad(`${f}.image`, `is not an image reference: ${JSON.stringify(spec.image)}`, 'e.g. codeberg.org/forgejo/forgejo:11.0.15');
    else if ((!m[3] || m[3] === 'latest') && !m[4]) bad(`${f}.image`, `must pin an exact version, got ${JSON.stringify(spec.image)}`, 'add the release tag, e.g. vaultwarden/server:1.34.3');
    if (spec.mirror !== undefined && (typeof spec.mirror !== 'string' || !/^[a-z0-9.-]+(:\d+)?(\/[a-z0-9._/-]+)?$/.test(spec.mirror))) bad(`${f}.mirror`, 'must be a registry host[:port][/prefix]', "e.g. 'registry.lan:5000'");
    if (spec.file !== undefined && (typeof spec.file !== 'string' || spec.file === '')) bad(`${f}.file`, 'must be the path of a `docker save` archive');
    if (spec.mirror !== undefined && spec.file !== undefined) bad(f, 'give mirror or file, not both');
    out.push({ arg, image: spec.image, ...(typeof spec.mirror === 'string' ? { mirror: spec.mirror } : {}), ...(typeof spec.file === 'string' ? { file: spec.file } : {}) });
  }
  return out;
}

/** The registry host of a reference (Docker Hub when it has none). */
export function registryOf(image: string): string {
  const m = REF.exec(image);
  return m?.[1] && /[.:]/.test(m[1]) || m?.[1] === 'localhost' ? m[1] : 'docker.io';
}

/** The reference to pull: the upstream one, or the same repository path and tag on the mirror. */
export function pullRef(u: Pick<UpstreamImage, 'image' | 'mirror'>): string {
  if (!u.mirror) return u.image;
  const host = REF.exec(u.image)?.[1];
  // Without a registry host the first path part is a Docker Hub namespace, kept; official images live under library/.
  let rest = host && (/[.:]/.test(host) || host === 'localhost') ? u.image.slice(host.length + 1) : u.image;
  if (!rest.includes('/')) rest = `library/${rest}`;
  return `${u.mirror.replace(/\/+$/, '')}/${rest}`;
}
