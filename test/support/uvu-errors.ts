// Makes uvu print every failing test's name and error: its reporter calls `details.split()`, so an error whose
// `details` is a list (UserError) threw inside uvu's own catch and the test failed silently. Loaded by test/run.ts.
import { register } from 'node:module';

const hook = `
const NEEDLE = 'if (details) str += GUTTER';
export async function load(url, context, next) {
  const r = await next(url, context);
  if (!/[\\\\/]uvu[\\\\/]dist[\\\\/]index\\.mjs$/.test(url)) return r;
  const source = String(r.source);
  if (!source.includes(NEEDLE)) throw new Error('test/support/uvu-errors.ts: uvu changed; update the patch');
  return { ...r, source: source.replace(NEEDLE, "if (details && typeof details !== 'string') details = [].concat(details).join('\\\\n');\\n\\t" + NEEDLE) };
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
