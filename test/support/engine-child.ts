// A separate process running the engine with the test steps: lets tests kill a run mid-task or race two runs.
// Usage: node --import tsx test/support/engine-child.ts ROOT TARGET… ; exits 0 ok, 1 failed, 130 interrupted, 5 locked.
import { run } from '../../lib/engine.ts';
import { UserError, EXIT } from '../../lib/error.ts';
import { testConfig, testSteps } from './test-steps.ts';

const [root, ...targets] = process.argv.slice(2);
const controller = new AbortController();
process.on('SIGTERM', () => controller.abort());
process.on('SIGINT', () => controller.abort());
try {
  const out = await run({
    root, config: testConfig(), steps: testSteps, targets,
    flags: { force: false, freshData: false, yes: false, verify: false, purge: false },
    dryRun: false, keepGoing: false, waitMs: Number(process.env.WAIT_MS ?? 0),
    emit: (e) => process.stdout.write(JSON.stringify(e) + '\n'), signal: controller.signal, confirm: async () => false,
  });
  process.exitCode = out.interrupted ? EXIT.interrupted : out.ok ? 0 : 1;
} catch (e) {
  process.stderr.write(String((e as Error).message) + '\n');
  process.exitCode = e instanceof UserError ? EXIT[e.code] : 70;
}
