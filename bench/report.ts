/**
 * What a bench run produces: the summary tables (stdout), the JSON document
 * (`--json`), and the Markdown report with SVG plots (vega-lite compiled to
 * vega, rendered headless to SVG).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as VegaLiteModule from 'vega-lite/build/index';
import { type PlotSpec, type ScenarioName, type Table, type TargetCheck } from './scenario';

/** One scenario's outcome in a run. */
export interface ScenarioOutcome {
  readonly name: ScenarioName;
  readonly title: string;
  readonly method: string;
  readonly durationMs: number;
  /** 1-minute load average of the machine at the scenario's start and end: how much else was running. */
  readonly loadAverage: readonly [number, number];
  readonly metrics: unknown;
  readonly tables: readonly Table[];
  readonly plots: readonly PlotSpec[];
  readonly targets: readonly TargetCheck[];
  /** Set when the scenario failed; the others still ran. */
  readonly error?: string;
}

export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly grpcJs: string;
  readonly platform: string;
  /** 1-minute load average when the run started and ended (other work on the machine skews figures). */
  readonly loadAverageStart: number;
  readonly loadAverageEnd: number;
}

export interface BenchRun {
  readonly startedAt: string;
  readonly quick: boolean;
  readonly seed: number;
  readonly durationMs: number;
  readonly command: string;
  readonly machine: MachineInfo;
  readonly scenarios: readonly ScenarioOutcome[];
}

function targetRows(targets: readonly TargetCheck[]): string[][] {
  return targets.map(t => [t.scenario, t.what, t.target, t.measured, t.met === undefined ? 'n/a' : t.met ? 'met' : 'MISSED', t.note ?? '']);
}

const TARGET_COLUMNS = ['scenario', 'what', 'target', 'measured', 'result', 'note'];

function textTable(table: Pick<Table, 'title' | 'columns' | 'rows' | 'note'>): string {
  const widths = table.columns.map((c, i) => Math.max(c.length, ...table.rows.map(r => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  const out = [table.title, line(table.columns), widths.map(w => '-'.repeat(w)).join('  '), ...table.rows.map(line)];
  if (table.note) out.push(`(${table.note})`);
  return out.join('\n');
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function markdownTable(table: Pick<Table, 'columns' | 'rows'>): string {
  return [
    `| ${table.columns.map(escapeCell).join(' | ')} |`,
    `|${table.columns.map(() => '---').join('|')}|`,
    ...table.rows.map(r => `| ${r.map(escapeCell).join(' | ')} |`),
  ].join('\n');
}

/** Every target of the run, scenario order. */
export function allTargets(run: BenchRun): TargetCheck[] {
  return run.scenarios.flatMap(s => s.targets);
}

/** The summary printed on stdout: each scenario's tables, then the targets. */
export function textSummary(run: BenchRun): string {
  const parts: string[] = [];
  for (const s of run.scenarios) {
    parts.push(`== ${s.name}: ${s.title} (${(s.durationMs / 1000).toFixed(1)} s, load average ${s.loadAverage[0].toFixed(1)} → ${s.loadAverage[1].toFixed(1)})`);
    if (s.error) parts.push(`FAILED: ${s.error}`);
    for (const t of s.tables) parts.push(textTable(t));
  }
  const targets = allTargets(run);
  if (targets.length > 0) parts.push(textTable({ title: '== targets (each row names its issue where it is not issue 7)', columns: TARGET_COLUMNS, rows: targetRows(targets) }));
  parts.push(`bench: ${run.quick ? 'quick' : 'full'} run of ${run.scenarios.map(s => s.name).join(', ')} in ${(run.durationMs / 1000).toFixed(1)} s`);
  return `${parts.join('\n\n')}\n`;
}

/** The `--json` document: run facts, then scenario → { metrics, targets }. */
export function jsonDocument(run: BenchRun): Record<string, unknown> {
  const scenarios: Record<string, unknown> = {};
  for (const s of run.scenarios) {
    scenarios[s.name] = {
      durationMs: Math.round(s.durationMs),
      loadAverage: s.loadAverage,
      metrics: s.metrics,
      targets: s.targets,
      ...(s.error ? { error: s.error } : {}),
    };
  }
  return {
    bench: 'grpc-etcd-lb',
    command: run.command,
    startedAt: run.startedAt,
    quick: run.quick,
    seed: run.seed,
    durationMs: Math.round(run.durationMs),
    machine: run.machine,
    scenarios,
  };
}

/** vega-lite's package declares its types only in `exports`, which this project's `moduleResolution: node` does not read. */
type VegaLite = typeof VegaLiteModule;
const VEGA_LITE = 'vega-lite';

/** Renders a vega-lite spec to SVG (vega-lite and vega are ESM-only: loaded on first use). */
export async function renderSvg(plot: PlotSpec): Promise<string> {
  const vl = (await import(VEGA_LITE)) as VegaLite;
  const vega = await import('vega');
  const compiled = vl.compile(plot.spec as unknown as Parameters<typeof vl.compile>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function markdown(run: BenchRun): string {
  const m = run.machine;
  const out: string[] = [
    '# grpc-etcd-lb bench report',
    '',
    `Generated by \`${run.command}\` on ${run.startedAt} (${run.quick ? 'quick' : 'full'} run, ${(run.durationMs / 1000).toFixed(0)} s).`,
    `Machine: ${m.cpus} × ${m.cpuModel}, ${m.platform}, Node ${m.node}, @grpc/grpc-js ${m.grpcJs}; `
      + `1-min load average ${m.loadAverageStart.toFixed(2)} at start, ${m.loadAverageEnd.toFixed(2)} at end.`,
    '',
    'Every figure is measured in this run; ratios are against a baseline measured in the same run (grpc-js `round_robin` unless '
      + 'stated). Replicas are real grpc-js echo servers, each in its own process, on 127.0.0.1; the client load runs in the bench process.',
    '',
    '## Targets (issue 7 unless the row names another)',
    '',
    markdownTable({ columns: TARGET_COLUMNS, rows: targetRows(allTargets(run)) }),
    '',
  ];
  for (const s of run.scenarios) {
    out.push(`## ${s.title} (\`--scenario ${s.name}\`)`, '', s.method, '',
      `_${(s.durationMs / 1000).toFixed(0)} s; 1-min load average ${s.loadAverage[0].toFixed(2)} at start, ${s.loadAverage[1].toFixed(2)} at end._`, '');
    if (s.error) out.push(`**Failed:** ${s.error}`, '');
    for (const t of s.tables) {
      out.push(`**${t.title}**`, '', markdownTable(t), '');
      if (t.note) out.push(`_${t.note}_`, '');
    }
    for (const p of s.plots) out.push(`![${p.title}](plots/${p.name}.svg)`, '');
  }
  return out.join('\n');
}

/** Writes `REPORT.md`, `plots/*.svg` and `results.json` (the `--json` document, for `--render`) under `dir`; returns the report's path. */
export async function writeReport(run: BenchRun, dir: string): Promise<string> {
  const plotsDir = join(dir, 'plots');
  await mkdir(plotsDir, { recursive: true });
  await writeFile(join(dir, 'results.json'), `${JSON.stringify(jsonDocument(run), null, 2)}\n`);
  for (const s of run.scenarios) {
    for (const plot of s.plots) await writeFile(join(plotsDir, `${plot.name}.svg`), await renderSvg(plot));
  }
  const path = join(dir, 'REPORT.md');
  await writeFile(path, markdown(run));
  return path;
}
