// `sovereign cache ls | verify | gc | export | import`: the local store from the command line.
import { join, resolve } from 'node:path';
import { parseSize } from '../config.ts';
import { EXIT, UserError } from '../error.ts';
import { acquireLock } from '../lock.ts';
import { unmarkClean } from '../sweep.ts';
import { LocalStore, localStore } from '../store/local.ts';
import { confirm, context, type MainOptions, parse, type RunParsed, waitSeconds } from './args.ts';

export async function cacheCommand(args: string[], opts: MainOptions): Promise<number> {
  const o = parse(args, 'cache', { 'max-size': { type: 'string' } });
  const [sub, file] = o.positionals;
  const { root, config } = await context(opts.steps);
  const store = localStore(config, root);
  const json = !!o.values.json;
  const wait = waitSeconds(o);
  // Commands that change the store wait for a running build (10 minutes unless --wait): gc must not delete what it is storing.
  // export too: it stages in the cache's tmp folder, which a run's sweep empties.
  const lock = ['gc', 'verify', 'import', 'export'].includes(sub)
    ? await acquireLock(join(root, '.sovereign', 'lock'), { waitMs: (wait ?? 600) * 1000, onWait: (who) => process.stderr.write(`waiting for another run to finish (${who})\n`) })
    : undefined;
  try {
    if (lock) await unmarkClean(root); // it may leave temp files in the store if killed: the next run must look
    return await cacheSubcommand(sub, file, o, store, json);
  } finally {
    await lock?.release();
  }
}

async function cacheSubcommand(sub: string | undefined, file: string | undefined, o: RunParsed, store: LocalStore, json: boolean): Promise<number> {
  const out = (text: string, data: unknown) => process.stdout.write(json ? JSON.stringify(data, null, 2) + '\n' : text);
  switch (sub) {
    case 'ls': {
      const recs = (await store.listRecords()).sort((a, b) => a.task.localeCompare(b.task) || b.createdAt.localeCompare(a.createdAt));
      const size = (n: number) => (n > 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${n} B`);
      out(recs.map((r) => `${r.task.padEnd(24)} ${r.key.slice(0, 12)}  ${size(r.files.reduce((s, f) => s + f.size, 0)).padStart(10)}  ${r.createdAt}  ${r.files.map((f) => f.name).join(', ') || JSON.stringify(r.value)}`).join('\n') + (recs.length ? '\n' : 'the cache is empty\n'), recs);
      return EXIT.ok;
    }
    case 'verify': {
      const r = await store.verify();
      out(`${r.records} records, ${r.blobs} blobs checked; ${r.bad.length} corrupt${r.bad.length ? ' (evicted: their tasks will re-run)' : ''}\n`, r);
      return r.bad.length ? EXIT.failed : EXIT.ok;
    }
    case 'gc': {
      const text = o.values['max-size'] as string | undefined;
      if (text === undefined) throw new UserError('cache gc needs --max-size', { code: 'usage', hint: 'e.g. sovereign cache gc --max-size 5G' });
      const max = parseSize(text);
      if (max === undefined) throw new UserError(`--max-size '${text}' is not a whole number with a unit`, { code: 'usage', hint: 'e.g. --max-size 5G, 1500M or 0B (units: B, K, M, G, T)' });
      // gc keeps the records that fit, newest first: it keeps none only when no record fits on its own.
      const recs = await store.listRecords();
      const empties = recs.length > 0 && recs.every((r) => r.files.reduce((n, f) => n + f.size, 0) > max);
      if (empties && !(await confirm(`--max-size ${text} removes all ${recs.length} records: empty the cache?`, !!o.values.yes))) {
        process.stderr.write('nothing removed\n');
        return EXIT.ok;
      }
      const r = await store.gc(max);
      out(`removed ${r.removedRecords} records, freed ${(r.freedBytes / (1 << 20)).toFixed(1)} MiB; the cache now holds ${(r.sizeBytes / (1 << 20)).toFixed(1)} MiB\n`, r);
      return EXIT.ok;
    }
    case 'export':
    case 'import': {
      if (!file) throw new UserError(`cache ${sub} needs a FILE`, { code: 'usage', hint: `sovereign cache ${sub} cache.tgz` });
      const archive = await import('../store/archive.ts');
      // The remote cache's signing key also signs (export) and checks (import) archives: no unsigned record gets in.
      const signatureKey = process.env.SOVEREIGN_REMOTE_CACHE_SIGNATURE_KEY || process.env.TURBO_REMOTE_CACHE_SIGNATURE_KEY || undefined;
      const r = sub === 'export' ? await archive.exportCache(store.dir, resolve(file), undefined, { signatureKey }) : await archive.importCache(store.dir, resolve(file), { signatureKey });
      out(`${sub}ed: ${JSON.stringify(r)}\n`, r);
      return EXIT.ok;
    }
    default:
      throw new UserError(sub ? `unknown cache command '${sub}'` : 'cache needs a command', { code: 'usage', hint: 'sovereign cache ls | verify | gc --max-size SIZE | export FILE | import FILE' });
  }
}
