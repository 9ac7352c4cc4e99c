// How many bytes this process has read, from /proc: tests of sparse files use it to prove their holes were skipped.
import { readFileSync } from 'node:fs';

/**
 * Bytes read through read(2) so far by this process and the children it has reaped (cp, tar: the kernel adds theirs
 * on exit). Holes count when read: the kernel copies their zeros too.
 */
export const bytesRead = () => Number(/^rchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);
