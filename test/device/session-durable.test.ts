// The device session's writes under strace (the real scripts, on the local transport): a pushed file and the manifest are
// synced before their rename and their folder after; and a failing read never puts the file (stdout) in its error.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Device } from '../../lib/config.ts';
import { createSession } from '../../lib/device/session.ts';
import { localTransport } from '../../lib/device/local.ts';
import type { Transport } from '../../lib/device/transport.ts';
import { exec } from '../../lib/exec.ts';
import { UserError } from '../../lib/error.ts';

const root = mkdtempSync(join(tmpdir(), 'sov-session-durable-'));
test.after(async () => { await fs.rm(root, { recursive: true, force: true }); });
const device = { name: 'local', transport: 'local', root: join(root, 'dev') } as unknown as Device;

/** The local transport with every script run under strace; returns the trace of all scripts so far. */
function tracedTransport(): { transport: Transport; trace: () => string } {
  const base = localTransport(root);
  const files: string[] = [];
  const transport: Transport = {
    ...base,
    run(script, opts = {}) {
      const file = join(root, `trace-${files.length}`);
      files.push(file);
      return exec('strace', ['-f', '-y', '-qq', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2', '-o', file, 'sh', '-c', script],
        { cwd: root, input: opts.input, timeoutMs: opts.timeoutMs, nothrow: opts.nothrow });
    },
  };
  return { transport, trace: () => files.map((f) => readFileSync(f, 'utf8')).join('\n') };
}

/** For every rename into `dir`: an fsync of the source before it and of `dir` after it. */
function assertDurable(trace: string, dest: string): void {
  const lines = trace.split('\n');
  const at = lines.findIndex((l) => /\brename(at2?)?\(/.test(l) && l.includes(`"${dest}"`));
  assert.ok(at >= 0, `a rename to ${dest} was traced:\n${trace}`);
  const from = [...lines[at].matchAll(/"([^"]*)"/g)].map((m) => m[1]).at(-2)!;
  assert.ok(lines.slice(0, at).some((l) => /\bf(data)?sync\(\d+</.test(l) && l.includes(`<${from}>`)), `fsync of ${from} before the rename`);
  assert.ok(lines.slice(at + 1).some((l) => /\bf(data)?sync\(\d+</.test(l) && l.includes(`<${dirname(dest)}>`)), `fsync of ${dirname(dest)} after the rename`);
}

test('push and writeFile (the manifest): fsync(file), mv, fsync(folder) on the device', async () => {
  const { transport, trace } = tracedTransport();
  const s = createSession(transport, device, join(root, 'dev'));
  const local = join(root, 'rootfs.img');
  await fs.writeFile(local, 'image bytes');
  const dest = join(root, 'dev', 'vm', 'sql', 'rootfs.img');
  await s.push(local, dest);
  assertDurable(trace(), dest);
  const manifest = join(root, 'dev', 'vm', 'sql', 'manifest.json');
  await s.writeFile(manifest, '{}\n', 0o644);
  assertDurable(trace(), manifest);
});

test('a failing read of secrets.env never puts its stdout (the secret) in the error', async () => {
  const failing: Transport = {
    ...localTransport(root),
    run: async () => ({ code: 1, stdout: 'UE9TVEdSRVNfUEFTU1dPUkQ9aHVudGVyMg== POSTGRES_PASSWORD=hunter2', stderr: '' }) as Awaited<ReturnType<Transport['run']>>,
  };
  const s = createSession(failing, device, join(root, 'dev'));
  const err = await s.readFile(join(root, 'dev', 'vm', 'sql', 'secrets.env')).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof UserError, String(err));
  const text = JSON.stringify({ m: (err as UserError).message, d: (err as UserError).details, h: (err as UserError).hint });
  assert.not.match(text, 'hunter2');
  assert.not.match(text, 'UE9TVEdSRVNfUEFTU1dPUkQ9aHVudGVyMg');
});

test.run();
