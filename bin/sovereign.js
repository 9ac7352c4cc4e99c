#!/usr/bin/env node
// Entry point: the bundled engine is built by `npm install` (prepare); see scripts/build.mjs.
import { main } from '../dist/sovereign.mjs';
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
