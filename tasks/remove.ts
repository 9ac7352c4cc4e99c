// Step `remove`: stops the VM and deletes its device dir, keeping data.img (the service's data) unless --purge is confirmed.
import { UserError } from '../lib/error.ts';
import { shQuote } from '../lib/device/shell.ts';
import type { Step } from '../lib/task.ts';
import { stopVm, VM_FILES } from '../lib/vm/process.ts';

export const remove: Step = {
  name: 'remove',
  kind: 'always',
  version: 1,
  summary: 'stop the VM and delete its files from the device (data.img kept unless --purge)',
  usesDevice: true,
  deps: () => [],
  async run(ctx) {
    const { service } = ctx;
    const session = await ctx.session();
    const dir = session.serviceDir(service.name);
    await stopVm(session, service.name, { signal: ctx.signal });
    if (!(await session.exists(dir))) { ctx.log(`${service.displayName}: nothing to remove`); return; }
    if (ctx.flags.purge) {
      const ok = await ctx.confirm(`Delete ${dir} on ${session.device.name}, including ${VM_FILES.data} (${service.displayName}'s data)? This cannot be undone.`);
      if (!ok) throw new UserError(`remove --purge of ${service.name} not confirmed: nothing deleted`, { hint: 'pass --yes to confirm in scripts, or drop --purge to keep data.img' });
      await session.run(`rm -rf ${shQuote(dir)} && [ ! -e ${shQuote(dir)} ]`, { signal: ctx.signal });
      session.forgetPushes(service.name);
      ctx.log(`${service.displayName}: removed ${dir} (data.img included)`);
      return;
    }
    // Everything but the data disk goes, the push manifest included, so the next deploy pushes afresh.
    const { stdout } = await session.run(`cd ${shQuote(dir)} || exit 1
for f in * .[!.]* ..?*; do
  case $f in ${VM_FILES.data}) ;; *) if [ -e "$f" ] || [ -L "$f" ]; then rm -rf -- "$f"; fi ;; esac
done
if [ -e ${VM_FILES.data} ]; then echo kept; else cd / && rmdir ${shQuote(dir)}; fi`, { signal: ctx.signal });
    session.forgetPushes(service.name);
    ctx.log(stdout.trim() === 'kept'
      ? `${service.displayName}: removed ${dir}, kept ${VM_FILES.data} (use --purge to delete the data too)`
      : `${service.displayName}: removed ${dir}`);
  },
};

export default remove;
