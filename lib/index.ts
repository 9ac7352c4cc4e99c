// Public surface: defineConfig for sovereign.config.ts, main for the CLI.
export { defineConfig } from './config.ts';
export type { ConfigInput, ServiceInput, DeviceInput, KernelSource } from './config.ts';
export { main } from './cli/index.ts';
export type { MainOptions } from './cli/index.ts';
export { run } from './engine.ts';
export type { Step, StepKind, RunContext, PlanContext, KeyInputs } from './task.ts';
