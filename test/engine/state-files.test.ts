// The state kept between runs: keys and output hashes in engine.json (read by every run), the key parts behind them in
// parts.json (read only to say why a task runs); a no-op run rewrites neither, and older state files still explain.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, promises as fs, statSync } from 'node:fs';
import { join } from 'node:path';
import { project } from '../support/engine.ts';

const p = await project();
const state = (name: string) => join(p.root, '.sovereign', 'state', name);
const readJson = async (name: string) => JSON.parse(await fs.readFile(state(name), 'utf8'));
/** The reason a dry run gives for re-running a:gen after its input changed. */
async function whyGen(): Promise<string> {
  await p.write('inputs/a.txt', `edited ${Math.random()}`);
  const dry = await p.run(['a:gen'], { dryRun: true });
  const e = dry.events.find((x) => x.type === 'done' && x.task === 'a:gen');
  return e && e.type === 'done' ? e.reason : 'no done event';
}

test('parts live in parts.json beside the keys; a run where nothing changed rewrites neither file', async () => {
  await p.run(['a:gen']);
  assert.is((await readJson('engine.json')).tasks['a:gen'].parts, undefined);
  assert.ok((await readJson('parts.json'))['a:gen'].parts['file:inputs/a.txt']);
  const times = ['engine.json', 'parts.json'].map((f) => statSync(state(f), { bigint: true }).mtimeNs);
  const again = await p.run(['a:gen']);
  assert.is(again.outcome('a:gen'), 'fresh');
  assert.equal(['engine.json', 'parts.json'].map((f) => statSync(state(f), { bigint: true }).mtimeNs), times);
  assert.match(await whyGen(), /changed: file:inputs\/a\.txt/);
});

test('state from before parts.json (parts inline in engine.json) still says what changed, and moves them out on the next run', async () => {
  await p.run(['a:gen']);
  const engine = await readJson('engine.json');
  const parts = await readJson('parts.json');
  for (const [id, t] of Object.entries(engine.tasks) as [string, Record<string, unknown>][]) t.parts = parts[id].parts;
  await fs.writeFile(state('engine.json'), JSON.stringify(engine));
  await fs.rm(state('parts.json'));
  assert.match(await whyGen(), /changed: file:inputs\/a\.txt/);
  await p.run(['a:gen']);
  assert.ok(existsSync(state('parts.json')));
  assert.is((await readJson('engine.json')).tasks['a:gen'].parts, undefined);
  assert.match(await whyGen(), /changed: file:inputs\/a\.txt/);
});

test('parts written for a key engine.json does not hold (a run stopped between the two writes) are not used to explain', async () => {
  await p.run(['a:gen']);
  const parts = await readJson('parts.json');
  parts['a:gen'].key = 'f'.repeat(64);
  parts['a:gen'].parts['config.misleading'] = 'x';
  await fs.writeFile(state('parts.json'), JSON.stringify(parts));
  const reason = await whyGen();
  assert.is(reason, 'no cached result for these inputs');
});

test('damaged state (engine.json or parts.json of the wrong shape) is no state: the run re-checks its tasks, never exit 70', async () => {
  await p.run(['a:gen']);
  for (const [file, body] of [['engine.json', '{}'], ['engine.json', 'null'], ['engine.json', '[1]'], ['engine.json', '{"tasks":5}'], ['engine.json', '{"tasks":{"a:gen":7},"toolMemo":null}'], ['parts.json', 'null']]) {
    await fs.writeFile(state(file), body);
    const r = await p.run(['a:gen']);
    assert.ok(['fresh', 'cached', 'ran'].includes(r.outcome('a:gen') ?? ''), `${file} = ${body}: outcome ${r.outcome('a:gen')}`);
    if (file === 'parts.json') assert.type(await whyGen(), 'string');
  }
});

test.after(() => p.cleanup());
test.run();
