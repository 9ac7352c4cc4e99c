// The step registry: every Step exported by the modules in tasks/, by name.
import type { Step } from '../lib/task.ts';
import * as aggregates from './aggregates.ts';
import * as kernel from './kernel.ts';
import * as startScript from './start-script.ts';

const modules: Record<string, unknown>[] = [aggregates, kernel, startScript];

const isStep = (v: unknown): v is Step => !!v && typeof v === 'object' && typeof (v as Step).name === 'string' && typeof (v as Step).deps === 'function';

export const steps: ReadonlyMap<string, Step> = new Map(modules.flatMap((m) => Object.values(m)).filter(isStep).map((s) => [s.name, s]));
