// Public surface: defineConfig for sovereign.config.ts, main for the CLI.
// Its declarations name Node's types (Buffer, NodeJS.*): kept in index.d.ts, so a consumer whose tsconfig lists no
// `types` (tsc --init's default) still loads them (@types/node is a dependency for that).
/// <reference types="node" preserve="true" />
export { defineConfig } from './config.ts';
export type { ConfigInput, ServiceInput, DeviceInput, KernelSource } from './config.ts';
export { main } from './cli/index.ts';
export type { MainOptions } from './cli/index.ts';
export { run } from './engine.ts';
export type { Step, StepKind, RunContext, PlanContext, KeyInputs } from './task.ts';
