// One CLI invocation (`sovereign run deploy`) in the current folder, with the synthetic steps.
import { main } from '../../dist/sovereign.mjs';
import { steps } from './shape.mjs';
process.exitCode = await main(process.argv.slice(2), { steps });
