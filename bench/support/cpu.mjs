// A bench child's CPU time (user + system, all threads), written to stderr as it exits: `cpu-us <microseconds>`.
export const CPU_LINE = /^cpu-us (\d+)$/m;
export function reportCpu() {
  process.on('exit', () => { const u = process.cpuUsage(); process.stderr.write(`\ncpu-us ${u.user + u.system}\n`); });
}
