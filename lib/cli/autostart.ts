// `sovereign autostart --enable|--disable`: installs or removes the boot hook that starts the device's deployed VMs after a reboot.
import type { Config } from '../config.ts';
import { resolveDevice } from '../engine.ts';
import { EXIT, UserError } from '../error.ts';
import { disableAutostart, enableAutostart } from '../vm/autostart.ts';

export async function autostartCommand(values: Record<string, string | boolean | undefined>, root: string, config: Config): Promise<number> {
  const { enable, disable, json } = values;
  if (Boolean(enable) === Boolean(disable)) {
    throw new UserError('autostart needs exactly one of --enable or --disable', { code: 'usage', hint: 'sovereign autostart --enable --device phone' });
  }
  const device = resolveDevice(config, values.device as string | undefined);
  const { openSession } = await import('../device/session.ts');
  const session = await openSession(device, root);
  try {
    const r = enable ? await enableAutostart(session, config) : await disableAutostart(session);
    if (json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    else if (r.enabled) {
      process.stdout.write(`autostart enabled on ${r.device}: ${r.hook} runs ${r.bootScript} at boot\n`
        + `  it starts the deployed VMs in this order, each after its dependencies are ready: ${r.order.join(', ')}\n`
        + `  its log: ${r.bootScript.replace(/[^/]*$/, 'boot.log')}; re-run after changing services in the config\n`);
    } else process.stdout.write(`autostart disabled on ${r.device}: removed ${r.hook} and ${r.bootScript} (running VMs keep running)\n`);
    return EXIT.ok;
  } finally {
    await session.close();
  }
}
