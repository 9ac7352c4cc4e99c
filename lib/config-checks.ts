// Config checks that span services or look at the repo: shared addresses and ports, dependsOn cycles, payload folders.
import { statSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Service } from './config.ts';
import type { Bad } from './config-resolve.ts';

/** Runs after each service resolved on its own; `root` (the repo) enables the checks that read the disk. */
export function checkAcrossServices(services: Map<string, Service>, root: string | undefined, bad: Bad): void {
  const byIp = new Map<string, string>();
  const aboveDirs = root === undefined ? new Set<string>() : rootAndAbove(root);
  for (const svc of services.values()) {
    const f = `services.${svc.name}`;
    const other = byIp.get(svc.guestIp);
    if (svc.guestIp && other) bad(`${f}.guestIp`, `${svc.guestIp} is also services.${other}.guestIp`, 'each VM needs an address of its own');
    else byIp.set(svc.guestIp, svc.name);
    const twice = svc.ports.filter((p, i) => svc.ports.indexOf(p) !== i);
    if (twice.length) bad(`${f}.ports`, `lists ${[...new Set(twice)].join(', ')} more than once`, 'list each port once');
    const st = root === undefined ? undefined : statSync(join(root, svc.dir), { throwIfNoEntry: false });
    if (root !== undefined && !st?.isDirectory()) bad(`${f}.dir`, `folder '${svc.dir}' does not exist in ${root}`, `create it with the VM's Dockerfile and init.sh, or point dir at the payload folder`);
    // A link to the repo root (or above) makes it the build context, as dir: '.' would: .env and .sovereign/ included.
    else if (st && aboveDirs.has(folderId(st))) bad(`${f}.dir`, `'${svc.dir}' leads (through a symlink) to the repo root or a folder above it: the build context would include .env and .sovereign/`, `point dir at the VM's own folder, e.g. 'vm/${svc.name}'`);
  }
  const cycle = dependsOnCycle(services);
  if (cycle) bad(`services.${cycle[0]}.dependsOn`, `forms a cycle: ${cycle.join(' -> ')}`, 'a service cannot wait for itself: remove one dependsOn entry of the loop');
}

/** Device and inode: a folder's identity whichever path (or symlink) reached it. One stat per service folder. */
const folderId = (st: Stats) => `${st.dev}:${st.ino}`;

/** The repo root and every folder above it, by identity (a few stats, once). */
function rootAndAbove(root: string): Set<string> {
  const ids = new Set<string>();
  for (let dir = resolve(root); ; dir = dirname(dir)) {
    const st = statSync(dir, { throwIfNoEntry: false });
    if (st) ids.add(folderId(st));
    if (dirname(dir) === dir) return ids;
  }
}

/** The first dependsOn loop, as service names from start back to start; undefined when there is none. */
function dependsOnCycle(services: Map<string, Service>): string[] | undefined {
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (name: string): string[] | undefined => {
    const at = path.indexOf(name);
    if (at >= 0) return [...path.slice(at), name];
    if (done.has(name) || !services.has(name)) return undefined;
    path.push(name);
    for (const d of services.get(name)!.dependsOn) {
      const c = visit(d);
      if (c) return c;
    }
    path.pop();
    done.add(name);
    return undefined;
  };
  for (const name of services.keys()) {
    const c = visit(name);
    if (c) return c;
  }
  return undefined;
}
