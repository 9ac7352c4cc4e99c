// start.sh: the POSIX sh script that boots one service's VM on its device; one template per hypervisor in start-script/.
import { shQuote } from '../device/shell.ts';
import { VM_FILES } from './files.ts';
import { renderCrosvm } from './start-script/crosvm.ts';
import { portEnvName, type StartScriptParams } from './start-script/params.ts';
import { renderQemu } from './start-script/qemu.ts';

export * from './start-script/params.ts';

/** Renders start.sh for the device's hypervisor. */
export function renderStartScript(p: StartScriptParams): string {
  return p.hypervisor === 'crosvm' ? renderCrosvm(p) : renderQemu(p);
}

/** Environment start.sh reads, passed through from sovereign's own environment when set. */
const PASSTHROUGH = ['SOVEREIGN_CROSVM', 'SOVEREIGN_UPLINK', 'SOVEREIGN_LAN'];

/**
 * The command that runs start.sh on the device (given to spawnDetached): the chosen accelerator and any
 * port/crosvm overrides from sovereign's environment as assignments (never secrets), then `exec`, so the
 * recorded pid stays the hypervisor's.
 */
export function startCommand(p: Pick<StartScriptParams, 'name' | 'ports'>, accel: 'kvm' | 'tcg', env: NodeJS.ProcessEnv = process.env): string {
  const vars = [`SOVEREIGN_ACCEL=${accel}`];
  for (const port of p.ports) {
    const name = portEnvName(p.name, port);
    const v = Number(env[name]);
    if (Number.isInteger(v) && v > 0 && v < 65536) vars.push(`${name}=${v}`);
  }
  for (const name of PASSTHROUGH) if (env[name]) vars.push(`${name}=${shQuote(env[name]!)}`);
  return `${vars.join(' ')} exec sh ${VM_FILES.script}`;
}
