// Shell text shared by the transports: quoting, and one stdin stream that carries both a script and its input.

/** Remote commands time out like the original's adb helper did, unless the caller asks for longer. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** Single-quotes `s` for a POSIX shell. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const END = '__SOVEREIGN_INPUT_END__';

/**
 * Builds the text fed to a remote `sh -s`: the script, and its stdin embedded as base64 in a
 * here-document. Remote shells read their script from the same stdin, so raw input could be eaten
 * by the shell's read-ahead; embedding keeps argv fixed and secrets off it, and survives NUL bytes.
 * Without input the script's stdin is /dev/null, so a stray `cat` cannot swallow the script.
 */
export function stdinScript(script: string, input?: string | Buffer): string {
  if (input === undefined) return `{\n${script}\n} </dev/null\n`;
  const b64 = Buffer.from(input).toString('base64').replace(/.{1,76}/g, '$&\n');
  return `__sov_input() {\nbase64 -d <<'${END}'\n${b64}${END}\n}\n__sov_input | {\n${script}\n}\n`;
}

/** Marks a device file as a push's temp copy (`.<name>.sov-tmp-<pid>-<rand>`): debris a killed push leaves is found by it. */
export const TEMP_MARK = '.sov-tmp-';
