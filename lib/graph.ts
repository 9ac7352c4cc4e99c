// The task graph: targets parsed, tasks expanded from step definitions, cycles reported.
import type { Config, Device, Service } from './config.ts';
import { didYouMean } from './config.ts';
import { err, ok, type Result, UserError } from './error.ts';
import type { PlanContext, Step } from './task.ts';

export type Steps = ReadonlyMap<string, Step>;

export interface TaskNode {
  id: string;
  service: Service;
  step: Step;
  ctx: PlanContext;
  deps: string[];
  /** Set when this task is another task under a second name. */
  alias?: string;
}

export interface TaskGraph {
  /** Every task, each inserted after its dependencies (so this order is a topological one). */
  nodes: Map<string, TaskNode>;
  /** The requested tasks, in order. */
  roots: string[];
}

export const taskId = (service: string, step: string) => `${service}:${step}`;

/** `svc:step`, or a bare `step` meaning every service. Unknown names get a did-you-mean. */
export function parseTargets(targets: string[], config: Config, steps: Steps): Result<string[]> {
  const out: string[] = [];
  for (const t of targets) {
    const [svc, step, extra] = t.split(':');
    if (extra !== undefined || svc === '' || step === '') return err(usage(`'${t}' is not a task name`, 'tasks are <service>:<step>, e.g. sql:build, or a step alone for every service'));
    if (step === undefined) {
      if (steps.has(svc)) { for (const s of config.services.keys()) out.push(taskId(s, svc)); continue; }
      if (config.services.has(svc)) return err(usage(`'${t}' is a service, not a task`, `name a step too, e.g. ${svc}:build or ${svc}:deploy`));
      return err(usage(`unknown step '${t}'`, hint(t, [...steps.keys(), ...config.services.keys()])));
    }
    if (!config.services.has(svc)) return err(usage(`unknown service '${svc}' in '${t}'`, hint(svc, config.services.keys())));
    if (!steps.has(step)) return err(usage(`unknown step '${step}' in '${t}'`, hint(step, steps.keys(), (s) => `${svc}:${s}`)));
    out.push(t);
  }
  return ok([...new Set(out)]);
}

/** Expands `roots` into the graph of every task they need. Unknown dependencies and cycles are user errors. */
export function buildGraph(roots: string[], config: Config, device: Device, steps: Steps): Result<TaskGraph> {
  const nodes = new Map<string, TaskNode>();
  const visiting: string[] = [];
  // One plan context per service, shared by its tasks (45,000 tasks at 5,000 services).
  const contexts = new Map<Service, PlanContext>();
  const visit = (id: string, from?: string): UserError | undefined => {
    const loop = visiting.indexOf(id);
    if (loop >= 0) return new UserError(`dependency cycle: ${[...visiting.slice(loop), id].join(' -> ')}`, { code: 'config', hint: `check dependsOn and kernel/base 'from' in ${config.file}` });
    if (nodes.has(id)) return undefined;
    const [svcName, stepName] = id.split(':');
    const service = config.services.get(svcName);
    const step = steps.get(stepName);
    if (!service || !step) return new UserError(`${from ?? 'a target'} depends on unknown task '${id}'`, { code: 'config' });
    let ctx = contexts.get(service);
    if (!ctx) contexts.set(service, (ctx = { service, config, device }));
    const alias = step.alias?.(ctx);
    const deps = alias ? [alias] : step.deps(ctx);
    visiting.push(id);
    for (const d of deps) {
      const e = visit(d, id);
      if (e) return e;
    }
    visiting.pop();
    nodes.set(id, { id, service, step, ctx, deps, alias });
    return undefined;
  };
  for (const r of roots) {
    const e = visit(r);
    if (e) return err(e);
  }
  return ok({ nodes, roots });
}

/** Tasks in an order where every task comes after its dependencies. */
export function topoOrder(g: TaskGraph): string[] {
  // Depth-first insertion already put every dependency first: no sort needed (it cost seconds at 45,000 tasks).
  return [...g.nodes.keys()];
}

export function toDot(g: TaskGraph): string {
  const lines = ['digraph sovereign {', '  rankdir=LR;'];
  for (const n of g.nodes.values()) lines.push(`  "${n.id}" [shape=${shape(n)}];`);
  for (const n of g.nodes.values()) for (const d of n.deps) lines.push(`  "${n.id}" -> "${d}";`);
  lines.push('}');
  return lines.join('\n');
}

export function toMermaid(g: TaskGraph): string {
  const id = (s: string) => s.replace(/[^a-zA-Z0-9]/g, '_');
  const lines = ['graph LR'];
  for (const n of g.nodes.values()) lines.push(`  ${id(n.id)}["${n.id}"]`);
  for (const n of g.nodes.values()) for (const d of n.deps) lines.push(`  ${id(n.id)} --> ${id(d)}`);
  return lines.join('\n');
}

const shape = (n: TaskNode) => ({ artifact: 'box', 'create-once': 'cylinder', effect: 'parallelogram', aggregate: 'ellipse', always: 'diamond' })[n.step.kind];

function usage(message: string, hintText: string) {
  return new UserError(message, { code: 'usage', hint: hintText });
}

function hint(word: string, names: Iterable<string>, show: (s: string) => string = (s) => s): string {
  const all = [...names];
  const guess = didYouMean(word, all);
  return guess ? `did you mean '${show(guess)}'?` : `known: ${all.join(', ')}`;
}
