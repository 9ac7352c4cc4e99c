// start.sh for qemu and crosvm: valid sh, no secrets, predictable loopback ports, and crosvm leaves other VMs' network alone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, type Config } from '../../lib/config.ts';
import { exec } from '../../lib/exec.ts';
import { hostPort, kernelCmdline, renderStartScript, startEnv, startScriptParams, type StartScriptParams } from '../../lib/vm/start-script.ts';
import { startScript as step } from '../../tasks/start-script.ts';

const SECRET_VALUES = ['hunter2-pg-Secret', 's3cr3t token with spaces'];
let dir = '';
let config: Config;

test.before(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), `start-script-${process.pid}-`));
  // The .env has values for the declared secrets: none of them may reach start.sh.
  await fs.writeFile(join(dir, '.env'), `POSTGRES_PASSWORD=${SECRET_VALUES[0]}\nFORGEJO_SECRET_KEY="${SECRET_VALUES[1]}"\n`);
  const r = resolveConfig({
    services: {
      sql: { displayName: 'PostgreSQL', guestIp: '192.168.100.2', ports: [5432], readyMarker: 'up', kernel: { path: 'k' }, memory: 1024, cpus: 2, secrets: ['POSTGRES_PASSWORD'], cmdline: "quiet it's" },
      forge: { displayName: 'Forgejo', guestIp: '192.168.100.3', ports: [443, 22], readyMarker: 'up', kernel: { from: 'sql' }, secrets: ['FORGEJO_SECRET_KEY'] },
    },
    devices: { phone: { transport: 'adb', hypervisor: 'crosvm', arch: 'aarch64' }, box: { transport: 'ssh', host: 'h', hypervisor: 'qemu', arch: 'aarch64' } },
  }, 'test');
  if (!r.ok) throw r.error;
  config = r.value;
});
test.after(() => fs.rm(dir, { recursive: true, force: true }));

const params = (svc: string, dev: string): StartScriptParams => startScriptParams(config.services.get(svc)!, config.devices.get(dev)!);

async function syntaxOk(script: string) {
  const f = join(dir, `s-${Math.random().toString(36).slice(2)}.sh`);
  await fs.writeFile(f, script);
  const r = await exec('sh', ['-n', f], { nothrow: true });
  assert.is(r.code, 0, r.stderr);
}

test('qemu: valid sh; nvme disks in order; ports forwarded on loopback only; accel from SOVEREIGN_ACCEL', async () => {
  const s = renderStartScript(params('forge', 'local'));
  await syntaxOk(s);
  assert.match(s, /exec qemu-system-x86_64 "\$@"/);
  assert.match(s, /-machine q35 -cpu max -m 512 -smp 1/);
  assert.match(s, /\$\{SOVEREIGN_ACCEL:-tcg\}/);
  assert.ok(s.indexOf('file=rootfs.img') < s.indexOf('file=data.img') && s.indexOf('file=data.img') < s.indexOf('file=secrets.env'));
  assert.match(s, /file=secrets.env,if=none,id=secrets,format=raw,readonly=on/);
  assert.match(s, /root=\/dev\/nvme0n1 rw panic=-1 init=\/sbin\/init/);
  assert.match(s, /sovereign.data=\/dev\/nvme1n1 sovereign.secrets=\/dev\/nvme2n1/);
  assert.match(s, /-nographic -no-reboot/);
  // forge is the 2nd service: 443 -> 20200, 22 -> 20201, each overridable.
  assert.match(s, /hostfwd=tcp:127.0.0.1:\$\{SOVEREIGN_PORT_FORGE_443:-20200\}-10.0.2.15:443/);
  assert.match(s, /hostfwd=tcp:127.0.0.1:\$\{SOVEREIGN_PORT_FORGE_22:-20201\}-10.0.2.15:22/);
  assert.not.match(s, /hostfwd=tcp::|hostfwd=tcp:0.0.0.0/);
  assert.is(hostPort(params('forge', 'local'), 22, {}), 20201);
  assert.is(hostPort(params('forge', 'local'), 22, { SOVEREIGN_PORT_FORGE_22: '2222' }), 2222);
  assert.equal(startEnv(params('forge', 'local'), 'tcg', { SOVEREIGN_PORT_FORGE_22: '2222', SOVEREIGN_PORT_FORGE_443: 'x; rm -rf /', SOVEREIGN_RESTART_LIMIT: '3' }), ['SOVEREIGN_ACCEL=tcg', 'SOVEREIGN_PORT_FORGE_22=2222', 'SOVEREIGN_RESTART_LIMIT=3']);
  assert.match(renderStartScript(params('sql', 'box')), /exec qemu-system-aarch64 "\$@"/);
  assert.match(kernelCmdline(params('sql', 'box')), /console=ttyAMA0/);
});

test('aarch64 qemu: the virt machine, and a keyboard and monitor so stop can send ctrl-alt-delete', async () => {
  const s = renderStartScript(params('sql', 'box'));
  await syntaxOk(s);
  assert.match(s, /-machine virt -cpu max/);
  assert.match(s, /-device virtio-keyboard-pci/);
  assert.match(s, /-monitor pipe:vm.monitor/);
  const x86 = renderStartScript(params('sql', 'local'));
  assert.match(x86, /-machine q35 -cpu max/);
  assert.not.match(x86, /virtio-keyboard/, 'q35 has its own keyboard');
});

test('the user cmdline is quoted safely', async () => {
  const s = renderStartScript(params('sql', 'local'));
  await syntaxOk(s);
  assert.match(s, /init=\/sbin\/init .* quiet it'\\''s'/);
});

test("crosvm: valid sh; shared bridge/NAT added idempotently, never deleted; no pkill; this VM's TAP only", async () => {
  const s = renderStartScript(params('sql', 'phone'));
  await syntaxOk(s);
  assert.not.match(s, /pkill|killall/);
  assert.not.match(s, /iptables[^\n]* -D /);
  assert.not.match(s, /ip rule del/);
  assert.match(s, /iptables -t nat -C POSTROUTING -s "\$SUBNET" -o "\$UPLINK" -j MASQUERADE 2>\/dev\/null \|\|\n\s+iptables -t nat -A POSTROUTING/);
  for (const m of s.matchAll(/iptables (-t nat )?-[AI] /g)) assert.ok(s.slice(Math.max(0, m.index! - 200), m.index).includes(' -C '), 'every add is guarded by -C');
  assert.match(s, /BRIDGE=vm_bridge/);
  assert.match(s, /ip addr add 192.168.100.1\/24/);
  assert.match(s, /TAP=vm_sql\n/);
  assert.match(s, /ip link del "\$TAP"/);
  assert.match(s, /--block rootfs.img,root --block data.img/);
  assert.match(s, /--block secrets.env,ro/);
  assert.match(s, /--serial type=stdout --net tap-name="\$TAP" --socket vm.sock/);
  assert.match(s, /exec "\$CROSVM" "\$@" kernel/);
  assert.match(s, /root=\/dev\/vda .*sovereign.data=\/dev\/vdb sovereign.secrets=\/dev\/vdc/);
});

test("dns: crosvm guests get 8.8.8.8 by default, or the device's dns; qemu keeps slirp's unless dns is set", async () => {
  const withDevices = (devices: Record<string, unknown>) => resolveConfig({ services: { sql: { displayName: 'P', guestIp: '192.168.100.2', ports: [5432], readyMarker: 'up', kernel: { path: 'k' } } }, devices }, 'sovereign.config.ts');
  const script = (dns: unknown, hypervisor = 'crosvm') => {
    const r = withDevices({ d: { transport: 'adb', hypervisor, ...(dns === undefined ? {} : { dns }) } });
    if (!r.ok) throw r.error;
    return renderStartScript(startScriptParams(r.value.services.get('sql')!, r.value.devices.get('d')!));
  };
  assert.match(script(undefined), / sovereign\.dns=8\.8\.8\.8[ ']/);
  assert.match(script('1.1.1.1'), / sovereign\.dns=1\.1\.1\.1[ ']/);
  assert.match(script(['1.1.1.1', '2606:4700:4700::1111']), / sovereign\.dns=1\.1\.1\.1,2606:4700:4700::1111[ ']/);
  await syntaxOk(script(['1.1.1.1', '2606:4700:4700::1111']));
  assert.match(script(undefined, 'qemu'), / sovereign\.dns=10\.0\.2\.3[ ']/);
  assert.match(script(['9.9.9.9'], 'qemu'), / sovereign\.dns=9\.9\.9\.9[ ']/);
  assert.is(script(['9.9.9.9'], 'qemu').match(/sovereign\.dns=/g)?.length, 1);
  assert.is(params('sql', 'local').dns, undefined, 'a qemu device without dns keeps its start-script key');
  for (const dns of ['dns.google', '', [], ['8.8.8.8', '300.1.1.1'], ['1.1.1.1', '1.0.0.1', '8.8.8.8', '8.8.4.4'], 8, '8.8.8.8 1.1.1.1']) {
    const r = withDevices({ phone: { transport: 'adb', dns } });
    assert.not.ok(r.ok, JSON.stringify(dns));
    if (!r.ok) {
      assert.match(r.error.message, /devices\.phone\.dns: must be one to three IPv4 or IPv6 addresses/);
      assert.match(r.error.message, /hint: e\.g\. dns: '8\.8\.8\.8'/);
      assert.is(r.error.code, 'config');
    }
  }
});

test('no secret value, no .env and no repo path in any rendering; the key reads only what the script is made of', async () => {
  for (const svc of ['sql', 'forge']) for (const dev of ['local', 'phone', 'box']) {
    const s = renderStartScript(params(svc, dev));
    for (const v of SECRET_VALUES) assert.not.ok(s.includes(v), `${svc}@${dev} contains a secret`);
    assert.not.ok(s.replace(/secrets\.env/g, '').includes('.env'), 'start.sh must not touch .env');
    assert.not.ok(s.includes(dir));
    assert.not.match(s, /\bsource\b|\beval\b/);
  }
  const ctx = { service: config.services.get('sql')!, config, device: config.devices.get('local')! };
  const inputs = (await step.inputs!(ctx)) as { config: StartScriptParams };
  assert.equal(Object.keys(inputs.config).sort(), ['arch', 'cmdline', 'cpus', 'expose', 'guestIp', 'hypervisor', 'index', 'memory', 'name', 'ports']);
  const phone = (await step.inputs!({ ...ctx, device: config.devices.get('phone')! })) as { config: StartScriptParams };
  assert.equal(phone.config.dns, ['8.8.8.8'], "a crosvm device's resolvers shape its script, so they are keyed");
  assert.equal(step.outputs!(ctx), ['start.sh']);
  // The task itself, given a context whose secrets() would hand out the .env values, never asks for them.
  const outDir = join(dir, 'out');
  await fs.mkdir(outDir);
  let asked = false;
  const session = { device: config.devices.get('phone')! };
  await step.run!({ ...ctx, device: config.devices.get('phone')!, outDir, session: async () => session, secrets: async () => { asked = true; return { POSTGRES_PASSWORD: SECRET_VALUES[0] }; } } as never);
  const out = await fs.readFile(join(outDir, 'start.sh'), 'utf8');
  assert.not.ok(asked);
  assert.match(out, /crosvm/);
  for (const v of SECRET_VALUES) assert.not.ok(out.includes(v));
  assert.is((await fs.stat(join(outDir, 'start.sh'))).mode & 0o777, 0o755);
});

test('expose: qemu forwards exactly the exposed ports on the chosen address; bad entries name the field', async () => {
  const svc = (expose: unknown) => resolveConfig({ services: { forge: { displayName: 'F', guestIp: '192.168.100.3', ports: [443, 22], readyMarker: 'up', kernel: { path: 'k' }, expose } } }, 'sovereign.config.ts');
  const r = svc([443, { port: 22, hostPort: 2222, address: '192.168.1.20' }]);
  if (!r.ok) throw r.error;
  const s = renderStartScript(startScriptParams(r.value.services.get('forge')!, r.value.devices.get('local')!));
  await syntaxOk(s);
  assert.match(s, /,hostfwd=tcp::443-10.0.2.15:443/);
  assert.match(s, /mcast=\$lan,localaddr=127.0.0.1/, 'the LAN NIC joins the device group on loopback');
  assert.ok(startEnv(params('sql', 'local'), 'tcg', { SOVEREIGN_LAN: '239.255.1.1:41000' }).includes("SOVEREIGN_LAN='239.255.1.1:41000'"));
  assert.match(s, /,hostfwd=tcp:192.168.1.20:2222-10.0.2.15:22/);
  assert.is(s.match(/hostfwd=/g)?.length, 4, 'two loopback forwards, two exposed');
  assert.match(kernelCmdline(startScriptParams(r.value.services.get('forge')!, r.value.devices.get('local')!)), / sovereign.expose=443,22/);
  // Off by default: loopback forwards only.
  const none = svc(undefined);
  if (!none.ok) throw none.error;
  assert.is(renderStartScript(startScriptParams(none.value.services.get('forge')!, none.value.devices.get('local')!)).match(/hostfwd=tcp:127.0.0.1:/g)?.length, 2);
  for (const [bad, why] of [[[80], /services.forge.expose\[0\]: port 80 is not one of the service's ports \(443, 22\)/], [[{ port: 443, address: 'lan' }], /expose\[0\].address: is not an IPv4 address/], [[443, { port: 22, hostPort: 443 }], /host port 443 is exposed twice/], ['443', /expose: must be a list/]] as const) {
    const e = svc(bad);
    assert.not.ok(e.ok);
    if (!e.ok) assert.match(e.error.message, why);
  }
});

test.run();
