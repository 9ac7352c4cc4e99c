// --help texts: what each command does, with examples.
export const HELP = `sovereign — build and deploy small VMs (one per self-hosted service) as a graph of cached tasks

Usage: sovereign <command> [options]

Commands
  run <targets…>         bring tasks up to date: build what changed, push what the device lacks
  why <task>             which inputs changed since the task last ran
  graph [targets…]       print the task graph (--format dot|mermaid)
  cache <ls|verify|gc|export|import>   inspect and manage the local cache
  hash [targets…]        a stable hash of the targets' inputs (for CI cache keys)
  preflight              check tools, docker daemon, device and .env; says how to fix each
  autostart --enable|--disable   start the device's deployed VMs again after it reboots
  build|deploy|start|stop|test|remove|logs --sql --forge …   the original CLI's words
  status [--sql …]       is each VM running?

Targets are <service>:<step> (sql:rootfs, forge:deploy) or a step alone for every service (build).
Steps: base image rootfs data-disk kernel start-script build push-rootfs push-kernel push-start-script
       push-data-disk push-secrets chmod deploy start stop remove test status logs

Examples
  sovereign run forge:deploy          build what changed, pull in sql's kernel, push what differs
  sovereign run sql:start             ...and boot the VM, waiting for its ready marker
  sovereign run build --dry-run       what would run, and why
  sovereign why sql:rootfs
  sovereign build --sql --forge       = sovereign run sql:build forge:build

Exit codes: 0 ok · 1 a task failed · 2 bad command line · 3 invalid config or cycle
            4 environment not ready (docker, device, tool, disk full) · 5 another run holds the lock
            70 internal error (a bug) · 130 interrupted
Environment: NO_COLOR disables colour; SOVEREIGN_REMOTE_CACHE_URL/_TOKEN point at a remote cache.
Run 'sovereign <command> --help' for a command's options.
`;

const RUN_FLAGS = `Options
  --dry-run               print the plan: each task, run / restore / skip, and why; change nothing
  --force                 re-run artifact and effect tasks even when up to date (never replaces data disks)
  --device NAME           the device to deploy to (default: config defaultDevice, else 'local')
  --concurrency N         builds at once (default: the number of cores); device tasks run one at a time, beside them
  --continue              after a failure, go on with tasks that do not depend on it
  --fresh-data            replace data.img (locally and on the device) with an empty one; asks first
  --yes, -y               answer yes to confirmations (scripts)
  --verify                re-hash files on the device instead of trusting its manifest
  --purge                 with remove: also delete data.img
  --remote-cache MODE     off | read | read-write (read for untrusted builds such as pull requests)
  --json                  print the run summary as JSON on stdout (progress goes to stderr)
  --summary FILE          also write the run summary to FILE (always written to .sovereign/runs/last.json)
  --wait SECONDS          how long to wait for another run in this repo (default 600)
  --verbose, -v           list every task, also those up to date, and every output line
`;

const COMMANDS: Record<string, string> = {
  run: `Usage: sovereign run <targets…> [options]

Brings the targets and everything they need up to date. A task is skipped when its key (its inputs,
its dependencies' outputs, its step version) has a cached result; its outputs are restored from the
cache only when something needs them on disk. Effects (pushes, start) are skipped when the device
already has the desired state.

${RUN_FLAGS}
Examples
  sovereign run sql:build
  sovereign run forge:deploy --device phone
  sovereign run build --dry-run
  sovereign run sql:start forge:start --continue
`,
  why: `Usage: sovereign why <task>

Names the inputs (config fields, files, tools, dependency outputs) that changed since the task last ran.

Example
  sovereign why sql:rootfs
`,
  graph: `Usage: sovereign graph [targets…] [--format dot|mermaid]

Prints the task graph for the targets (default: every task), as Graphviz DOT or Mermaid.

Examples
  sovereign graph forge:deploy --format mermaid
  sovereign graph | dot -Tsvg > graph.svg
`,
  cache: `Usage: sovereign cache <command>

  ls                    records in the local cache: task, key, size, date
  verify                re-hash every blob; evict corrupt entries (their tasks re-run)
  gc --max-size SIZE    drop least recently used entries until the cache fits (e.g. 5G)
  export FILE           write records and blobs to a portable tar (for CI directory caches)
  import FILE           verify and add the entries of an exported tar
  --json                machine-readable output
`,
  hash: `Usage: sovereign hash [targets…]

Prints a stable hash of every input of the targets' graph (default: build), e.g. as a CI cache key.
`,
  preflight: `Usage: sovereign preflight [--device NAME] [--json]

Checks the tools, the docker daemon, the device and .env, and says how to fix what is missing.
Exit code 4 when something is missing.
`,
  autostart: `Usage: sovereign autostart --enable|--disable [--device NAME] [--json]

Makes the device start its deployed VMs after a reboot, the way \`sovereign start\` does: in dependsOn
order, each under its supervisor, each dependency ready (its ready marker) before the VMs that need it.
VMs read their secrets from their own 0600 secrets.env disk: none is on a command line or in a log.

  --enable     install <root>/boot.sh and the boot hook that runs it:
               adb phone:  /data/adb/service.d/sovereign.sh (Magisk or KernelSU runs it once
                           sys.boot_completed; boot.sh waits for that itself too)
               ssh box:    /etc/systemd/system/sovereign-vms.service, enabled (needs systemd);
                           at shutdown it runs <root>/halt.sh: the VMs stop as sovereign stop does
               Re-run it after adding or removing services in the config.
  --disable    remove the hook, boot.sh and halt.sh; running VMs keep running (stop them with sovereign stop)
  --device NAME   the device (default: config defaultDevice); the local device has no boot to hook
  --json       print what was installed or removed as JSON

Examples
  sovereign run deploy --device phone && sovereign autostart --enable --device phone
  sovereign autostart --disable --device phone
  adb shell su -c cat /data/sovereign/boot.log     what the last boot started, and when
`,
};

for (const word of ['build', 'deploy', 'start', 'stop', 'test', 'remove', 'logs', 'status']) {
  COMMANDS[word] = `Usage: sovereign ${word} --<service>… [options]   (the original CLI's words)

Runs <service>:${word} for each service flag given, e.g. 'sovereign ${word} --sql --forge'
is 'sovereign run sql:${word} forge:${word}'.${word === 'status' ? ' Without flags: every service.' : ''}

${RUN_FLAGS}`;
}

export function commandHelp(command: string): string {
  return COMMANDS[command] ?? HELP;
}
