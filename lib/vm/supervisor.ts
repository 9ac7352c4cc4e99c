// The VM supervisor: supervise.sh (POSIX sh, mksh/toybox compatible) stays the parent of start.sh's hypervisor, restarts it with a back-off and a limit, and records why.
import type { DeviceSession } from '../device/device.ts';
import { shQuote } from '../device/shell.ts';
import { UserError } from '../error.ts';
import { DEVICE_FILES, VM_FILES } from './files.ts';
import { devicePath } from './process.ts';
import { RESTART_POLICY } from './supervisor-env.ts';



/**
 * supervise.sh runs in a VM's folder and keeps `sh start.sh` running as its own child. Android's init kills
 * an orphaned hypervisor (ppid 1) after ~90 s (ORIGINAL §10.1; the original's daemon orphaned crosvm inside
 * a `$(…)`, §11); here the hypervisor's parent is this loop for as long as the VM runs.
 *
 * - On exit of the VM it logs why (exit status or signal) to supervisor.log, waits (delay, doubling up to
 *   maxDelay), restarts; after `limit` restarts without a run of steadySeconds it gives up, and then runs the
 *   VM's teardown.sh when start.sh left one (crosvm: its TAP and tagged port rules, as stop removes them).
 * - TERM/INT (from `stop`) end the supervisor only: the VM is left to `stop`'s clean shutdown, and nothing restarts it.
 * - supervisor.state (key=value, written atomically) is what `status` shows. No secret is ever logged:
 *   start.sh has none in its environment or arguments.
 * - The previous run's console goes to console.prev.log, so console.log always belongs to the running VM.
 */
export function renderSupervisor(): string {
  const f = VM_FILES;
  return `#!/bin/sh
# supervise.sh, rendered by sovereign: keeps the VM of the current folder running. Start it there,
# detached: cd <root>/vm/<service> && sh ../../${DEVICE_FILES.supervisor}
set -u
limit=\${SOVEREIGN_RESTART_LIMIT:-${RESTART_POLICY.limit}}
delay0=\${SOVEREIGN_RESTART_DELAY:-${RESTART_POLICY.delay}}
steady=\${SOVEREIGN_STEADY_SECONDS:-${RESTART_POLICY.steadySeconds}}
restarts=0
last_exit=none
child=

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) supervisor $$: $*" >> ${f.supervisorLog}; }
state() {
  printf 'pid=%s\\nstate=%s\\nrestarts=%s\\nlast_exit=%s\\nsince=%s\\n' "$$" "$1" "$restarts" "$last_exit" "$(date +%s)" > ${f.supervisorState}.tmp &&
    mv -f ${f.supervisorState}.tmp ${f.supervisorState}
}
# Why a child ended, from its wait status (128+N: killed by signal N).
why() {
  if [ "$1" -gt 128 ]; then
    n=$(($1 - 128))
    case $n in 1) s=HUP ;; 2) s=INT ;; 6) s=ABRT ;; 9) s=KILL ;; 11) s=SEGV ;; 15) s=TERM ;; *) s=$n ;; esac
    echo "killed by signal $s"
  else
    echo "exit status $1"
  fi
}
on_stop() {
  # The pid of a VM started a moment ago must not be lost: stop reads it from ${f.pid}.
  if [ -n "$child" ]; then echo "$child" > ${f.pid}; fi
  log "asked to stop: not restarting (the VM is left to stop's clean shutdown)"
  state stopped
  rm -f ${f.supervisorPid}
  exit 0
}
trap on_stop TERM INT
trap '' HUP
# On Android the low-memory killer must not pick the supervisor: its VM would be orphaned (and then reaped).
if [ -f /system/build.prop ]; then echo -1000 > /proc/self/oom_score_adj 2>/dev/null || true; fi

# Keep the log small on a phone: one older generation.
if [ -f ${f.supervisorLog} ] && [ "$(wc -c < ${f.supervisorLog})" -gt 262144 ]; then mv -f ${f.supervisorLog} ${f.supervisorLog}.old; fi
[ -f ${f.script} ] || { log "no ${f.script} in $(pwd): nothing to supervise"; state failed; exit 1; }
first=1
while :; do
  if [ -z "$first" ] && [ -f ${f.log} ]; then mv -f ${f.log} ${f.prevLog}; fi
  first=
  started=$(date +%s)
  sh ${f.script} < /dev/null >> ${f.log} 2>&1 &
  child=$!
  echo "$child" > ${f.pid}.tmp && mv -f ${f.pid}.tmp ${f.pid}
  log "started the VM (pid $child, restart $restarts of $limit)"
  state running
  wait "$child"
  code=$?
  pid=$child
  child=
  last_exit=$(why "$code")
  ran=$(($(date +%s) - started))
  rm -f ${f.pid}
  if [ "$ran" -ge "$steady" ]; then restarts=0; fi
  if [ "$restarts" -ge "$limit" ]; then
    log "VM (pid $pid) ended after \${ran}s: $last_exit; giving up after $restarts restarts (limit $limit)"
    # For good, so the VM's own network goes as stop takes it (crosvm: start.sh left ${f.teardown}, its TAP and tagged
    # port rules; qemu has none): left behind, an exposed port would hang its clients instead of refusing them.
    if [ -f ${f.teardown} ]; then
      sh ${f.teardown} >> ${f.supervisorLog} 2>&1
      rc=$?
      if [ "$rc" -eq 0 ]; then log "removed the VM's network (its TAP and port rules) as stop does"; else log "removing the VM's network failed (${f.teardown}: exit status $rc): sovereign stop removes it"; fi
    fi
    state gave-up
    rm -f ${f.supervisorPid}
    exit 1
  fi
  d=$delay0
  i=0
  while [ $i -lt $restarts ] && [ $d -lt ${RESTART_POLICY.maxDelay} ]; do d=$((d * 2)); i=$((i + 1)); done
  [ $d -le ${RESTART_POLICY.maxDelay} ] || d=${RESTART_POLICY.maxDelay}
  restarts=$((restarts + 1))
  log "VM (pid $pid) ended after \${ran}s: $last_exit; restart $restarts of $limit in \${d}s"
  state backoff
  # In the background so a stop during the back-off is handled at once.
  sleep "$d" &
  wait $!
done
`;
}


/** The command that runs the supervisor (in the VM's folder) with `env` assignments: `sovereign start` and boot.sh both use it. */
export function supervisorCommand(env: string[], script: string): string {
  return [...env, 'exec sh', shQuote(script)].join(' ');
}

/** Writes supervise.sh to the device root (before a start, and when autostart is enabled). */
export async function installSupervisor(session: DeviceSession): Promise<string> {
  const script = devicePath(session, 'supervisor');
  await session.writeFile(script, renderSupervisor(), 0o755);
  return script;
}

/** How long to wait for the supervisor to write the VM's pid. */
const VM_PID_TICKS = 100;

/**
 * Starts the service's VM under its supervisor (the one start path for every device): writes supervise.sh
 * to the device root, spawns it detached in the VM's folder with `env` (assignments, never secrets), and
 * returns the supervisor's pid and the first VM pid.
 */
export async function startSupervised(session: DeviceSession, service: string, env: string[], signal?: AbortSignal): Promise<{ supervisor: number; vm: number }> {
  const dir = session.serviceDir(service);
  const script = await installSupervisor(session);
  const supervisor = await session.spawnDetached(supervisorCommand(env, script), {
    cwd: dir, log: `${dir}/${VM_FILES.supervisorLog}`, pidFile: `${dir}/${VM_FILES.supervisorPid}`,
  });
  const r = await session.run(`cd ${shQuote(dir)} || exit 1
i=0; while [ ! -s ${VM_FILES.pid} ] && [ $i -lt ${VM_PID_TICKS} ]; do sleep 0.05; i=$((i+1)); done
cat ${VM_FILES.pid} 2>/dev/null || true`, { signal, nothrow: true });
  const vm = Number.parseInt(r.stdout, 10);
  if (!Number.isInteger(vm) || vm <= 0) {
    throw new UserError(`${service}: the supervisor (pid ${supervisor}) did not start the VM`, { hint: `see ${dir}/${VM_FILES.supervisorLog}` });
  }
  return { supervisor, vm };
}

/** What supervisor.state says, with whether the supervisor still runs. */
export interface SupervisorState {
  pid?: number;
  alive: boolean;
  state?: string;
  restarts?: number;
  lastExit?: string;
}

/** Reads supervisor.state and checks its pid really is this folder's supervisor (a reused pid is not). */
export async function supervisorState(session: DeviceSession, service: string, signal?: AbortSignal): Promise<SupervisorState | undefined> {
  const dir = session.serviceDir(service);
  const { stdout } = await session.run(`cd ${shQuote(dir)} 2>/dev/null || exit 0
[ -f ${VM_FILES.supervisorState} ] || exit 0
cat ${VM_FILES.supervisorState}
p=$(cat ${VM_FILES.supervisorPid} 2>/dev/null) || p=
case $p in ''|*[!0-9]*) exit 0 ;; esac
[ "$(readlink /proc/$p/cwd 2>/dev/null)" = "$(pwd -P)" ] && echo alive=1`, { signal, nothrow: true });
  if (!stdout.trim()) return undefined;
  const kv = Object.fromEntries(stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const num = (s?: string) => (s && /^\d+$/.test(s) ? Number(s) : undefined);
  return { pid: num(kv.pid), alive: kv.alive === '1', state: kv.state, restarts: num(kv.restarts), lastExit: kv.last_exit };
}

/** One line for status: `supervisor pid 123 (running), 2 restarts, last exit: killed by signal KILL`. */
export function describeSupervisor(s: SupervisorState | undefined): string {
  if (!s) return 'no supervisor has run';
  const what = s.alive ? `supervisor pid ${s.pid} (${s.state})` : `supervisor not running (${s.state === 'running' ? 'ended unexpectedly' : s.state})`;
  return `${what}, ${s.restarts ?? 0} restart${s.restarts === 1 ? '' : 's'}${s.lastExit && s.lastExit !== 'none' ? `, last exit: ${s.lastExit}` : ''}`;
}
