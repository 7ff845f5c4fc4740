/**
 * What a bench scenario is: it runs against the shared environment, returns
 * JSON-serialisable metrics, and describes them as tables (stdout and the
 * Markdown report), plots (vega-lite specs, rendered to SVG by report.ts) and
 * checks against the targets of issue 7.
 */
import { type BenchEnvironment } from './environment';

export const SCENARIO_NAMES = ['pick', 'throughput', 'slow-replica', 'failing-replica', 'kill', 'weights', 'discovery', 'scale', 'hedging', 'overload', 'stalls', 'slow-start', 'fleet', 'consul', 'idempotency', 'kubernetes-scale', 'routing'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** A table of already formatted cells. */
export interface Table {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<readonly string[]>;
  /** One or two sentences under the table (what a reader must know to read it). */
  readonly note?: string;
}

/** One acceptance target of issue 7, evaluated on this run. */
export interface TargetCheck {
  readonly scenario: ScenarioName;
  /** What is compared, e.g. "pick cost at 1,000 endpoints vs grpc-js round_robin". */
  readonly what: string;
  /** The target, e.g. "≤ 1.5×". */
  readonly target: string;
  /** The measured figure, formatted. */
  readonly measured: string;
  /** Undefined when it could not be measured (e.g. the policy is not registered). */
  readonly met: boolean | undefined;
  /** Why, when missed or not measured. */
  readonly note?: string;
}

/** A vega-lite plot; report.ts renders it to `plots/<name>.svg`. */
export interface PlotSpec {
  readonly name: string;
  readonly title: string;
  /** A vega-lite top-level spec with inline data. */
  readonly spec: Record<string, unknown>;
}

/** Progress of the run, shown on stderr. */
export interface ProgressSink {
  /** A step of the current scenario starts (one of the `steps()` it announced). */
  step(label: string): void;
  /** A line of information (what was started, a figure worth seeing early). */
  note(text: string): void;
}

export interface ScenarioContext {
  readonly env: BenchEnvironment;
  readonly quick: boolean;
  readonly progress: ProgressSink;
  /** Our LB policies registered with grpc-js (`etcd_*`), in report order. */
  readonly policies: readonly string[];
  /** Seed for any randomness the bench itself uses. */
  readonly seed: number;
  /** Endpoint counts of the `pick` scenario. */
  readonly pickSizes: readonly number[];
}

export interface Scenario<M> {
  readonly name: ScenarioName;
  readonly title: string;
  /** What is measured and how, for the report (Markdown). */
  readonly method: string;
  /** Steps `run` will announce with `progress.step` (for the progress bar). */
  steps(context: ScenarioContext): number;
  run(context: ScenarioContext): Promise<M>;
  tables(metrics: M): Table[];
  plots(metrics: M): PlotSpec[];
  targets(metrics: M): TargetCheck[];
}
