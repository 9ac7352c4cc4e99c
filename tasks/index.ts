// The step registry: every Step exported by the modules in tasks/, by name.
import type { Step } from '../lib/task.ts';
import * as aggregates from './aggregates.ts';
import * as base from './base.ts';
import * as image from './image.ts';
import * as upstream from './upstream.ts';
import * as rootfs from './rootfs.ts';
import * as dataDisk from './data-disk.ts';
import * as kernel from './kernel.ts';
import * as startScript from './start-script.ts';
import * as push from './push.ts';
import * as chmod from './chmod.ts';
import * as start from './start.ts';
import * as stop from './stop.ts';
import * as remove from './remove.ts';
import * as test from './test.ts';
import * as status from './status.ts';
import * as logs from './logs.ts';

const modules: Record<string, unknown>[] = [base, upstream, image, rootfs, dataDisk, kernel, startScript, aggregates, push, chmod, start, stop, remove, test, status, logs];

const isStep = (v: unknown): v is Step => !!v && typeof v === 'object' && typeof (v as Step).name === 'string' && typeof (v as Step).deps === 'function';

export const steps: ReadonlyMap<string, Step> = new Map(modules.flatMap((m) => Object.values(m)).filter(isStep).map((s) => [s.name, s]));
