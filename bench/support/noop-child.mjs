// One CLI invocation (`sovereign run deploy`) in the current folder, with the synthetic steps. Reports its CPU time
// (user + system, all threads) on stderr for bench/noop.ts: wall time on a shared machine measures the neighbours too.
import { reportCpu } from './cpu.mjs';
reportCpu();
import { main } from '../../dist/sovereign.mjs';
import { steps } from './shape.mjs';
process.exitCode = await main(process.argv.slice(2), { steps });
