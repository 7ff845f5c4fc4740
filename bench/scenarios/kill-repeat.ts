/**
 * Repeats the kill scenario's idempotent rows (the ones held to 0 failed calls) in one
 * process, to check the target under CPU contention: `tsx bench/scenarios/kill-repeat.ts
 * RUNS MAX_SECONDS` prints one line per run and row (calls, failed) and stops after RUNS
 * runs or MAX_SECONDS, whichever first. The CPU hogs are the caller's (see docs/benchmarks.md).
 */
import { loadavg } from 'node:os';
import { BenchEnvironment } from '../environment';
import { registeredEtcdPolicies } from '../policies';
import { type ScenarioContext } from '../scenario';
import { idempotentKillConfigs, runKill } from './kill';

async function main(runs: number, maxSeconds: number): Promise<void> {
  const env = new BenchEnvironment(text => process.stderr.write(`${text}\n`), 5_000);
  const context: ScenarioContext = {
    env, quick: true, progress: { step: () => undefined, note: () => undefined }, policies: registeredEtcdPolicies(), seed: 1, pickSizes: [],
  };
  const deadline = Date.now() + maxSeconds * 1000;
  let calls = 0;
  let failed = 0;
  try {
    for (let run = 1; run <= runs && Date.now() < deadline; run++) {
      const m = await runKill({ ...context, seed: run }, idempotentKillConfigs(context));
      const runCalls = m.rows.reduce((sum, r) => sum + r.calls, 0);
      const runFailed = m.rows.reduce((sum, r) => sum + r.failed, 0);
      calls += runCalls;
      failed += runFailed;
      const rows = m.rows.map(r => `${r.policy} ${r.calls}/${r.failed}${r.failed ? ` ${JSON.stringify(r.failedByCode)}` : ''}`).join(', ');
      process.stdout.write(`run ${run}: calls ${runCalls}, failed ${runFailed} (load ${loadavg()[0].toFixed(1)}; ${rows})\n`);
    }
  } finally {
    await env.close();
  }
  process.stdout.write(`total: calls ${calls}, failed ${failed}\n`);
}

void main(Number(process.argv[2] ?? 30), Number(process.argv[3] ?? 900)).catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
