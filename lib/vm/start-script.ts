// start.sh: the POSIX sh script that boots one service's VM on its device; one template per hypervisor in start-script/.
import { shQuote } from '../device/shell.ts';
import { SUPERVISOR_ENV } from './supervisor-env.ts';
import { crosvmControl, renderCrosvm } from './start-script/crosvm.ts';
import { portEnvName, type StartScriptParams } from './start-script/params.ts';
import { qemuControl, renderQemu } from './start-script/qemu.ts';

export * from './start-script/params.ts';

/** Renders start.sh for the device's hypervisor. */
export function renderStartScript(p: StartScriptParams): string {
  return p.hypervisor === 'crosvm' ? renderCrosvm(p) : renderQemu(p);
}

/**
 * Shell snippets stop runs with $pid set: `shutdown` asks the guest to power off cleanly (true when the
 * request was delivered); `exit`, when the hypervisor has one, ends the VM from its own side before TERM.
 */
export function vmControl(hypervisor: StartScriptParams['hypervisor']): { shutdown: string; exit?: string } {
  return hypervisor === 'crosvm' ? crosvmControl : qemuControl;
}

/** Environment start.sh reads, passed through from sovereign's own environment when set. */
const PASSTHROUGH = ['SOVEREIGN_CROSVM', 'SOVEREIGN_UPLINK', 'SOVEREIGN_LAN'];

/**
 * The environment start.sh (and its supervisor) runs with, as shell assignments: the chosen accelerator and
 * any port/crosvm/restart overrides from sovereign's environment (never secrets). Numbers are checked, strings quoted.
 */
export function startEnv(p: Pick<StartScriptParams, 'name' | 'ports'>, accel: 'kvm' | 'tcg', env: NodeJS.ProcessEnv = process.env): string[] {
  const vars = [`SOVEREIGN_ACCEL=${accel}`];
  const numeric = [...p.ports.map((port) => portEnvName(p.name, port)), ...SUPERVISOR_ENV];
  for (const name of numeric) {
    const v = Number(env[name]);
    if (env[name] && Number.isInteger(v) && v >= 0 && v < 65536) vars.push(`${name}=${v}`);
  }
  for (const name of PASSTHROUGH) if (env[name]) vars.push(`${name}=${shQuote(env[name]!)}`);
  return vars;
}
