/**
 * Every scenario by name, and how a scenario's metrics become an outcome
 * (tables, plots, target checks): after a run, and again when a saved run is
 * rendered (`--render`), so a report can be redrawn without measuring again.
 */
import { type ScenarioOutcome } from './report';
import { type Scenario, type ScenarioName } from './scenario';
import { consulScenario } from './scenarios/consul';
import { discoveryScenario } from './scenarios/discovery';
import { failingReplicaScenario } from './scenarios/failing-replica';
import { fleetScenario } from './scenarios/fleet';
import { hedgingScenario } from './scenarios/hedging';
import { idempotencyScenario } from './scenarios/idempotency';
import { overloadScenario } from './scenarios/overload';
import { killScenario } from './scenarios/kill';
import { kubernetesScaleScenario } from './scenarios/kubernetes-scale';
import { pickScenario } from './scenarios/pick';
import { routingScenario } from './scenarios/routing';
import { scaleScenario } from './scenarios/scale';
import { slowReplicaScenario } from './scenarios/slow-replica';
import { slowStartScenario } from './scenarios/slow-start';
import { stallsScenario } from './scenarios/stalls';
import { throughputScenario } from './scenarios/throughput';
import { weightsScenario } from './scenarios/weights';

export const SCENARIOS: Readonly<Record<ScenarioName, Scenario<unknown>>> = Object.freeze({
  'pick': pickScenario as Scenario<unknown>,
  'throughput': throughputScenario as Scenario<unknown>,
  'slow-replica': slowReplicaScenario as Scenario<unknown>,
  'failing-replica': failingReplicaScenario as Scenario<unknown>,
  'kill': killScenario as Scenario<unknown>,
  'weights': weightsScenario as Scenario<unknown>,
  'discovery': discoveryScenario as Scenario<unknown>,
  'scale': scaleScenario as Scenario<unknown>,
  'hedging': hedgingScenario as Scenario<unknown>,
  'slow-start': slowStartScenario as Scenario<unknown>,
  'fleet': fleetScenario as Scenario<unknown>,
  'overload': overloadScenario as Scenario<unknown>,
  'stalls': stallsScenario as Scenario<unknown>,
  'consul': consulScenario as Scenario<unknown>,
  'idempotency': idempotencyScenario as Scenario<unknown>,
  'kubernetes-scale': kubernetesScaleScenario as Scenario<unknown>,
  'routing': routingScenario as Scenario<unknown>,
});

/** The outcome of `scenario` from its metrics; `metrics` null with `error` for a failed scenario. */
export function describeOutcome(
  scenario: Scenario<unknown>,
  metrics: unknown,
  durationMs: number,
  loadAverage: readonly [number, number],
  error?: string,
): ScenarioOutcome {
  const common = { name: scenario.name, title: scenario.title, method: scenario.method, durationMs, loadAverage };
  if (error !== undefined || metrics === null || metrics === undefined) {
    return { ...common, metrics: null, tables: [], plots: [], targets: [], error: error ?? 'no metrics' };
  }
  return { ...common, metrics, tables: scenario.tables(metrics), plots: scenario.plots(metrics), targets: scenario.targets(metrics) };
}
