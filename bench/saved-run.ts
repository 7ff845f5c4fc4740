/**
 * Reads a run saved by the report (`results.json`, the same document as
 * `--json`) back into a `BenchRun`, re-deriving tables, plots and targets from
 * the saved metrics with the current scenario code (`npm run bench -- --render FILE`).
 */
import { readFile } from 'node:fs/promises';
import { type BenchRun, type MachineInfo, type ScenarioOutcome } from './report';
import { SCENARIO_NAMES, type ScenarioName } from './scenario';
import { describeOutcome, SCENARIOS } from './scenario-registry';

interface SavedScenario {
  durationMs?: unknown;
  loadAverage?: unknown;
  metrics?: unknown;
  error?: unknown;
}

function fail(path: string, what: string): never {
  throw new Error(`bench --render: ${path}: ${what}`);
}

export async function readSavedRun(path: string): Promise<BenchRun> {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    fail(path, `cannot read a JSON document (${(err as Error).message})`);
  }
  if (doc === null || typeof doc !== 'object' || doc.bench !== 'grpc-etcd-lb') fail(path, 'not a grpc-etcd-lb bench document (no "bench": "grpc-etcd-lb")');
  const scenarios = doc.scenarios as Record<string, SavedScenario> | undefined;
  if (scenarios === null || typeof scenarios !== 'object') fail(path, 'no "scenarios" object');
  const outcomes: ScenarioOutcome[] = [];
  for (const [name, saved] of Object.entries(scenarios)) {
    if (!(SCENARIO_NAMES as readonly string[]).includes(name)) fail(path, `unknown scenario '${name}'`);
    const loadAverage = Array.isArray(saved.loadAverage) && saved.loadAverage.length === 2 ? saved.loadAverage as [number, number] : [0, 0] as [number, number];
    outcomes.push(describeOutcome(SCENARIOS[name as ScenarioName], saved.metrics, Number(saved.durationMs ?? 0), loadAverage,
      typeof saved.error === 'string' ? saved.error : undefined));
  }
  return {
    startedAt: String(doc.startedAt ?? ''),
    quick: doc.quick === true,
    seed: Number(doc.seed ?? 0),
    durationMs: Number(doc.durationMs ?? 0),
    command: String(doc.command ?? 'npm run bench'),
    machine: doc.machine as MachineInfo,
    scenarios: outcomes,
  };
}
