/**
 * `npm run bench`: how a user (and we) decide which picker to use. Runs the
 * scenarios of issue 7 against real grpc-js echo servers in their own
 * processes and a throwaway etcd (or `ETCD_ENDPOINTS`), prints a summary (or
 * one JSON document with `--json`), and writes a Markdown report with SVG
 * plots. Run with `--help` for the flags.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg, platform, release } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BenchEnvironment } from './environment';
import { round } from './format';
import { Progress } from './progress';
import { registeredEtcdPolicies } from './policies';
import { jsonDocument, textSummary, writeReport, type BenchRun, type MachineInfo, type ScenarioOutcome } from './report';
import { readSavedRun } from './saved-run';
import { SCENARIO_NAMES, type Scenario, type ScenarioContext, type ScenarioName } from './scenario';
import { describeOutcome, SCENARIOS } from './scenario-registry';
import { DEFAULT_PICK_SIZES } from './scenarios/pick';

const DEFAULT_OUT_DIR = join(__dirname, 'results');
const MAX_PICK_SIZE = 100_000;

const USAGE = `usage: npm run bench -- [options]

Compares the etcd_* LB policies with grpc-js's round_robin and pick_first on real
grpc-js servers (each in its own process, 127.0.0.1). Starts and stops its own etcd
unless ETCD_ENDPOINTS (comma-separated host:port) is set.

options:
  --scenario NAME   run only this scenario; repeat or comma-separate for several
                    (${SCENARIO_NAMES.join(', ')}). Default: all.
  --quick           short runs (the whole bench in about 4 minutes on 2 cores)
  --json            print one JSON document (scenario -> metrics) on stdout, nothing else
  --out DIR         where REPORT.md and plots/*.svg go. Default: bench/results
  --no-report       do not write the Markdown report and plots
  --seed N          seed of the bench's own randomness (retry jitter). Default: 1
  --pick-sizes LIST endpoint counts of the pick scenario. Default: ${DEFAULT_PICK_SIZES.join(',')}
  --render FILE     measure nothing: redraw the summary, report and plots of a saved run
                    (the results.json written next to each REPORT.md)
  -h, --help        this text

Progress goes to stderr; the summary (or JSON) to stdout.`;

export interface BenchOptions {
  readonly scenarios: readonly ScenarioName[];
  readonly quick: boolean;
  readonly json: boolean;
  /** Undefined = no report. */
  readonly outDir: string | undefined;
  readonly seed: number;
  readonly pickSizes: readonly number[];
  /** A saved run to redraw instead of running. */
  readonly render: string | undefined;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): BenchOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        'scenario': { type: 'string', multiple: true },
        'quick': { type: 'boolean', default: false },
        'json': { type: 'boolean', default: false },
        'out': { type: 'string' },
        'no-report': { type: 'boolean', default: false },
        'seed': { type: 'string', default: '1' },
        'pick-sizes': { type: 'string' },
        'render': { type: 'string' },
        'help': { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const requested = (values.scenario ?? []).flatMap(s => s.split(',')).map(s => s.trim()).filter(Boolean);
  for (const name of requested) {
    if (!(SCENARIO_NAMES as readonly string[]).includes(name)) {
      throw new UsageError(`unknown scenario '${name}'; expected one of ${SCENARIO_NAMES.join(', ')}`);
    }
  }
  const scenarios = requested.length === 0 ? [...SCENARIO_NAMES] : SCENARIO_NAMES.filter(n => requested.includes(n));
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new UsageError(`--seed must be an integer ≥ 0, got '${values.seed}'`);
  let pickSizes = DEFAULT_PICK_SIZES;
  if (values['pick-sizes'] !== undefined) {
    pickSizes = values['pick-sizes'].split(',').map(s => Number(s.trim()));
    const bad = values['pick-sizes'].split(',').find((s, i) => !Number.isInteger(pickSizes[i]) || pickSizes[i] < 1 || pickSizes[i] > MAX_PICK_SIZE || s.trim() === '');
    if (bad !== undefined) throw new UsageError(`--pick-sizes must be integers in [1, ${MAX_PICK_SIZE}], comma-separated, got '${bad}' in '${values['pick-sizes']}'`);
  }
  if (values['no-report'] && values.out !== undefined) throw new UsageError('--out and --no-report contradict each other');
  if (values.render !== undefined) {
    const measuring = (['scenario', 'quick', 'pick-sizes'] as const).filter(flag => values[flag] !== undefined && values[flag] !== false);
    if (measuring.length > 0) throw new UsageError(`--render measures nothing: it takes no --${measuring.join(', --')}`);
  }
  return {
    scenarios,
    quick: values.quick,
    json: values.json,
    outDir: values['no-report'] ? undefined : resolve(values.out ?? DEFAULT_OUT_DIR),
    seed,
    pickSizes,
    render: values.render === undefined ? undefined : resolve(values.render),
  };
}

function grpcJsVersion(): string {
  try {
    return (JSON.parse(readFileSync(require.resolve('@grpc/grpc-js/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function runScenario(scenario: Scenario<unknown>, context: ScenarioContext): Promise<ScenarioOutcome> {
  const start = performance.now();
  const loadAtStart = round(loadavg()[0], 2);
  let metrics: unknown = null;
  let error: string | undefined;
  try {
    metrics = await scenario.run(context);
  } catch (err) {
    context.progress.note(`bench: scenario ${scenario.name} failed: ${(err as Error).stack ?? String(err)}`);
    error = (err as Error).message;
  }
  return describeOutcome(scenario, metrics, performance.now() - start, [loadAtStart, round(loadavg()[0], 2)], error);
}

function write(stream: NodeJS.WriteStream, text: string): Promise<void> {
  return new Promise(done => {
    if (!stream.write(text)) stream.once('drain', done);
    else done();
  });
}

/** Runs the selected scenarios; stops every process it started, also on Ctrl-C. */
async function measure(options: BenchOptions, argv: string[]): Promise<BenchRun> {
  const startedAt = new Date().toISOString();
  const loadAverageStart = loadavg()[0];
  const runStart = performance.now();
  const progress = new Progress();
  const env = new BenchEnvironment(text => progress.note(text), options.quick ? 5_000 : 8_000);
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    progress.end();
    process.stderr.write(`bench: ${signal}, stopping every process it started\n`);
    void env.close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const context: ScenarioContext = {
    env,
    quick: options.quick,
    progress,
    policies: registeredEtcdPolicies(),
    seed: options.seed,
    pickSizes: options.pickSizes,
  };
  const scenarios = options.scenarios.map(name => SCENARIOS[name]);
  progress.begin(scenarios.reduce((sum, s) => sum + s.steps(context), 0));
  progress.note(`bench: ${options.quick ? 'quick' : 'full'} run of ${options.scenarios.join(', ')}; policies: round_robin, pick_first, ${context.policies.join(', ')}`);
  const outcomes: ScenarioOutcome[] = [];
  try {
    for (const scenario of scenarios) {
      progress.scenarioStarts(scenario.name);
      outcomes.push(await runScenario(scenario, context));
    }
  } finally {
    progress.end();
    await env.close();
  }

  const machine: MachineInfo = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    grpcJs: grpcJsVersion(),
    platform: `${platform()} ${release()}`,
    loadAverageStart,
    loadAverageEnd: loadavg()[0],
  };
  return {
    startedAt,
    quick: options.quick,
    seed: options.seed,
    durationMs: performance.now() - runStart,
    command: `npm run bench -- ${argv.join(' ')}`.trim(),
    machine,
    scenarios: outcomes,
  };
}

async function main(argv: string[]): Promise<number> {
  let options: BenchOptions | 'help';
  try {
    options = parseOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench: ${err.message}\nRun with --help for the options.\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let run: BenchRun;
  if (options.render === undefined) {
    run = await measure(options, argv);
  } else {
    try {
      run = await readSavedRun(options.render);
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      return 2;
    }
  }
  if (options.outDir !== undefined) {
    const path = await writeReport(run, options.outDir);
    process.stderr.write(`bench: report written to ${path}\n`);
  }
  await write(process.stdout, options.json ? `${JSON.stringify(jsonDocument(run), null, 2)}\n` : textSummary(run));
  return run.scenarios.some(o => o.error !== undefined) ? 1 : 0;
}

main(process.argv.slice(2)).then(
  code => process.exit(code),
  async (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
