// The device half of a delta push: a POSIX sh + dd script (toybox and busybox have both) that assembles the new file.
import { posix } from 'node:path';
import { shQuote as q } from './shell.ts';

/** Block size of a delta: ext4's, so files the image builder moved keep whole blocks. */
export const BLOCK = 4096;

/** Exit codes of the script the host acts on (anything else is a failure). */
export const DELTA_EXIT = {
  /** The old file is not on the device: push in full. */
  oldMissing: 66,
  /** The old file has another size than its manifest says: push in full. */
  oldSize: 67,
  /** The assembled file does not hash to the wanted sha256 (the old file was not what its manifest says): push in full. */
  mismatch: 65,
} as const;

export interface AssembleParams {
  /** The device's current file (read, never written). */
  old: string;
  oldSize: number;
  /** The received blocks, uploaded beside the target. */
  literals: string;
  /** Where the new file is assembled: a temp name beside the target. */
  tmp: string;
  target: string;
  size: number;
  sha256: string;
  mode: number;
}

/**
 * The script reads the recipe on stdin, one run per line: `o SKIP SEEK COUNT` copies COUNT blocks of
 * the old file from block SKIP to block SEEK of the new one, `l …` the same from the received blocks.
 * Blocks no line names stay holes (zero blocks are never sent). One dd per run, not per block: a
 * file the image builder did not move is one run. The old file is only read, so a kill at any point
 * leaves it whole; the new file is renamed into place only after it is synced and its sha256 checked.
 */
export function assembleScript(p: AssembleParams): string {
  const clean = `rm -f ${q(p.tmp)} ${q(p.literals)}`;
  return [
    'set -u',
    `[ -f ${q(p.old)} ] || { ${clean}; exit ${DELTA_EXIT.oldMissing}; }`,
    `[ "$(wc -c < ${q(p.old)} | tr -d ' ')" = ${p.oldSize} ] || { ${clean}; exit ${DELTA_EXIT.oldSize}; }`,
    'umask 077',
    `rm -f ${q(p.tmp)} && : > ${q(p.tmp)} || exit 1`,
    'while read -r k s d n; do',
    `  case $k in o) f=${q(p.old)} ;; l) f=${q(p.literals)} ;; *) echo "bad recipe line: $k" >&2; ${clean}; exit 1 ;; esac`,
    `  dd if="$f" of=${q(p.tmp)} bs=${BLOCK} skip="$s" seek="$d" count="$n" conv=notrunc </dev/null 2>/dev/null || { echo "dd failed at block $d" >&2; ${clean}; exit 1; }`,
    'done',
    // Sets the exact size: a tail of zero blocks becomes a hole.
    `dd if=/dev/null of=${q(p.tmp)} bs=1 seek=${p.size} count=0 2>/dev/null || { ${clean}; exit 1; }`,
    `rm -f ${q(p.literals)}`,
    // Durable before trusted: sync the file (older toolboxes sync everything instead).
    `sync ${q(p.tmp)} 2>/dev/null || sync`,
    `got=$(sha256sum < ${q(p.tmp)} | cut -c1-64)`,
    `[ "$got" = ${p.sha256} ] || { echo "assembled file hashes to $got" >&2; ${clean}; exit ${DELTA_EXIT.mismatch}; }`,
    // The rename is the commit point; a VM still running keeps its open inode of the old file.
    `chmod ${(p.mode & 0o777).toString(8)} ${q(p.tmp)} && mv -f ${q(p.tmp)} ${q(p.target)} || { ${clean}; exit 1; }`,
    // …and the rename itself: sync the folder that holds the entry.
    `sync ${q(posix.dirname(p.target))} 2>/dev/null || sync`,
  ].join('\n');
}
