// Shape checks for values read from outside (JSON files, configs, records): one home for them.

/** A plain object (not null, not an array): what a JSON document's `{…}` parses to. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
