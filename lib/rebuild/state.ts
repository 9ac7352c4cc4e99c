// What a repo remembers between runs (.sovereign/state): per task the key and output hash of its last run, and tool
// versions (engine.json, read by every run), and the key parts behind each key (parts.json: most of the bytes at
// thousands of tasks, read only to say why a task runs, so a run where nothing runs never parses it).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsutil.ts';
import type { KeyParts } from '../key.ts';
import { isObject } from '../guards.ts';

/** What we remember about a task between runs (for early cutoff, and `why` through its parts). */
export interface TaskMemory {
  key: string;
  outputHash: string;
}

interface StateFile { tasks: Record<string, TaskMemory & { parts?: KeyParts }>; toolMemo: Record<string, string> }
/** Each task's parts with the key they make: parts left from a run that stopped before engine.json was written do not count. */
type PartsFile = Record<string, { key: string; parts: KeyParts }>;


export class EngineState {
  /** True once this run changed what is remembered (a no-op run leaves both files unwritten). */
  changed = false;
  private parts?: PartsFile;
  private readonly toolsBefore: string;

  private constructor(readonly tasks: Record<string, TaskMemory>, readonly toolMemo: Record<string, string>, private readonly dir?: string, parts?: PartsFile) {
    this.parts = parts;
    this.toolsBefore = JSON.stringify(toolMemo);
  }

  /** The state in `dir`; empty when there is none or it is unreadable (every task then runs or is checked afresh). */
  static load(dir: string): EngineState {
    let data: StateFile;
    try {
      data = JSON.parse(readFileSync(join(dir, 'engine.json'), 'utf8'));
    } catch {
      return new EngineState({}, {}, dir, {});
    }
    // Damaged or hand-edited (`{}`, `null`, a number): nothing is remembered, as with no file.
    if (!isObject(data) || !isObject(data.tasks)) return new EngineState({}, {}, dir, {});
    // Written before parts had a file of their own: they are inline, and move there on the next save.
    let inline: PartsFile | undefined;
    for (const id in data.tasks) {
      const t = data.tasks[id];
      if (!isObject(t) || typeof t.key !== 'string' || typeof t.outputHash !== 'string') { delete data.tasks[id]; continue; }
      if (!t.parts) continue;
      (inline ??= {})[id] = { key: t.key, parts: t.parts };
      delete t.parts;
    }
    const state = new EngineState(data.tasks, isObject(data.toolMemo) ? data.toolMemo : {}, dir, inline);
    state.changed = !!inline; // moved out on this run's save
    return state;
  }

  /** The key parts of the task's remembered key; undefined when not known. */
  partsOf(id: string): KeyParts | undefined {
    const p = this.allParts()[id];
    return p && p.key === this.tasks[id]?.key ? p.parts : undefined;
  }

  /** Remembers a task's latest key, parts and output hash. */
  remember(id: string, key: string, parts: KeyParts, outputHash: string): void {
    const before = this.tasks[id];
    // The key is the hash of its parts: same key, same parts.
    if (before?.key === key && before.outputHash === outputHash) return;
    this.allParts()[id] = { key, parts };
    this.tasks[id] = { key, outputHash };
    this.changed = true;
  }

  /** Writes what changed: parts first, so engine.json never names a key whose parts were not written. */
  async save(): Promise<void> {
    if (!this.dir || (!this.changed && JSON.stringify(this.toolMemo) === this.toolsBefore)) return;
    if (this.changed) await writeFileAtomic(join(this.dir, 'parts.json'), JSON.stringify(this.allParts()));
    await writeFileAtomic(join(this.dir, 'engine.json'), JSON.stringify({ tasks: this.tasks, toolMemo: this.toolMemo }));
    this.changed = false;
  }

  private allParts(): PartsFile {
    if (!this.parts) {
      try { this.parts = this.dir ? JSON.parse(readFileSync(join(this.dir, 'parts.json'), 'utf8')) as PartsFile : {}; } catch { this.parts = {}; }
      if (!isObject(this.parts)) this.parts = {};
    }
    return this.parts!;
  }
}
