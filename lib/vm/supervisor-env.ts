// The supervisor's tunables: the environment names supervise.sh reads and their defaults (apart, so start-script.ts and supervisor.ts share them without a cycle).

/** Defaults of the restart policy; `SOVEREIGN_RESTART_LIMIT` / `SOVEREIGN_RESTART_DELAY` / `SOVEREIGN_STEADY_SECONDS` override them. */
export const RESTART_POLICY = { limit: 5, delay: 2, maxDelay: 60, steadySeconds: 300 } as const;

/** Environment the supervisor reads (whole numbers), passed through from sovereign's own environment when set. */
export const SUPERVISOR_ENV = ['SOVEREIGN_RESTART_LIMIT', 'SOVEREIGN_RESTART_DELAY', 'SOVEREIGN_STEADY_SECONDS'];
