// What the remote store signs and what it names on the server: Turborepo's x-artifact-tag HMAC, record artifact ids.
import { createHash, createHmac, timingSafeEqual, type Hmac } from 'node:crypto';

/** Records live beside blobs on the server: a hex id derived from the key keeps the two apart and suits servers that want hex. */
export function recordArtifactId(key: string): string {
  return createHash('sha256').update(`sovereign-record-v1\0${key}`).digest('hex');
}

/** Signs uploads and checks downloads when a signature key is set; with none, every check passes. */
export class ArtifactSigner {
  constructor(private readonly key: string | undefined, private readonly team: string) {}

  /** A MAC to feed an artifact's body into; undefined when signing is off. */
  mac(id: string): Hmac | undefined {
    // Turborepo's tag: HMAC-SHA256(key, artifact hash ‖ team ‖ body), base64.
    return this.key ? createHmac('sha256', this.key).update(id).update(this.team) : undefined;
  }

  /** The `x-artifact-tag` header for a body (none when signing is off). */
  sign(id: string, feed: (mac: Hmac) => void): Record<string, string> {
    const mac = this.mac(id);
    if (!mac) return {};
    feed(mac);
    return { 'x-artifact-tag': mac.digest('base64') };
  }

  /** undefined when the tag is fine (or signing is off), else what is wrong. */
  check(id: string, tag: string | string[] | undefined, feed: (mac: Hmac) => void): string | undefined {
    const mac = this.mac(id);
    if (!mac) return undefined;
    if (typeof tag !== 'string') return 'unsigned artifact (signature is on)';
    feed(mac);
    return sameTag(mac.digest(), tag) ? undefined : 'signature mismatch (x-artifact-tag)';
  }
}

/** Compares an HMAC with a base64 tag (padded or not), in constant time. */
export function sameTag(mac: Buffer, tag: string): boolean {
  const got = Buffer.from(tag, 'base64');
  return got.length === mac.length && timingSafeEqual(got, mac);
}
