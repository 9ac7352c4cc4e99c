// What the processes sovereign starts for a device inherit from its environment.

/**
 * No more than a shell needs. Device commands (start.sh, its supervisor and qemu on the local device) and the
 * transports' own processes (ssh's connection master, adb's server) live on after sovereign, for minutes or hours:
 * never the remote-cache token or signing key. start.sh's own settings are passed as explicit, checked assignments
 * (lib/vm/start-script.ts startEnv).
 */
const SHELL_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR'];

/** What each transport's tool reads besides: ssh its agent; adb its server address, keys and home. */
const TOOL_ENV: Record<'local' | 'ssh' | 'adb', (name: string) => boolean> = {
  local: () => false,
  ssh: (k) => k === 'SSH_AUTH_SOCK',
  adb: (k) => k.startsWith('ADB_') || k.startsWith('ANDROID_'),
};

export function deviceEnv(transport: 'local' | 'ssh' | 'adb', env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const keep = TOOL_ENV[transport];
  return Object.fromEntries(Object.entries(env).filter(([k, v]) => v !== undefined && (SHELL_ENV.includes(k) || keep(k))));
}
