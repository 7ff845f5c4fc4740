/**
 * vega-lite spec builders for the report's plots (rendered to SVG by
 * report.ts). Data is inline. A policy keeps its colour in every plot where it
 * is a series of its own; other series take the remaining colours in order.
 */
import { type PlotSpec } from './scenario';

const WIDTH = 560;
const HEIGHT = 260;
const FONT = 'Helvetica, Arial, sans-serif';

/** Fixed colours of the series that appear across plots. */
const COLOURS: Readonly<Record<string, string>> = Object.freeze({
  'round_robin': '#4c78a8',
  'pick_first': '#f58518',
  'etcd_weighted_round_robin': '#e45756',
  'etcd_weighted_random': '#72b7b2',
  'etcd_least_request': '#54a24b',
  'etcd_peak_ewma': '#b279a2',
  'expected W(i)/ΣW': '#9d9d9d',
});
const SPARE_COLOURS = ['#eeca3b', '#ff9da6', '#9d755d', '#bab0ac', '#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#8c564b', '#17becf'];

/** A colour scale over `series`: fixed colours first, spare ones for the rest. */
function colourScale(series: readonly string[]): Record<string, unknown> {
  const taken = new Set(series.map(name => COLOURS[name]).filter(Boolean));
  const spare = SPARE_COLOURS.filter(c => !taken.has(c));
  return { domain: series, range: series.map(name => COLOURS[name] ?? spare.shift() ?? '#333333') };
}

function base(title: string, data: readonly object[]): Record<string, unknown> {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, font: FONT, fontSize: 14 },
    width: WIDTH,
    height: HEIGHT,
    background: 'white',
    config: { font: FONT, axis: { labelFontSize: 11, titleFontSize: 12, labelLimit: 400 }, legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 320 } },
    data: { values: data },
  };
}

/** One point of a latency-percentile chart. */
export interface PercentileDatum {
  /** Percentile label, e.g. `p99.9`. */
  readonly percentile: string;
  readonly series: string;
  readonly ms: number;
}

/** Latency percentiles, one line per series, log-scale milliseconds: how a tail grows. */
export function percentileLines(options: { name: string; title: string; data: readonly PercentileDatum[]; seriesTitle: string }): PlotSpec {
  const percentiles = [...new Set(options.data.map(d => d.percentile))];
  const series = [...new Set(options.data.map(d => d.series))];
  return {
    name: options.name,
    title: options.title,
    spec: {
      ...base(options.title, options.data),
      mark: { type: 'line', point: { size: 50 }, tooltip: true },
      encoding: {
        x: { field: 'percentile', type: 'ordinal', sort: percentiles, title: 'percentile', axis: { labelAngle: 0 } },
        y: { field: 'ms', type: 'quantitative', title: 'latency (ms, log scale)', scale: { type: 'log' } },
        color: { field: 'series', type: 'nominal', sort: series, title: options.seriesTitle, scale: colourScale(series), legend: { labelLimit: 480 } },
      },
    },
  };
}

/** One row of a grouped bar chart: bar `series` within `group`. */
export interface BarDatum {
  readonly group: string;
  readonly series: string;
  readonly value: number;
}

/** Bars grouped by `group` (x), one per `series` (colour). */
export function groupedBars(options: {
  name: string;
  title: string;
  data: readonly BarDatum[];
  groupTitle: string;
  valueTitle: string;
  seriesTitle: string;
  /** A horizontal reference line at this value (e.g. a target). */
  rule?: { value: number; label: string };
}): PlotSpec {
  const groups = [...new Set(options.data.map(d => d.group))];
  const series = [...new Set(options.data.map(d => d.series))];
  const bars = {
    mark: { type: 'bar', tooltip: true },
    encoding: {
      x: { field: 'group', type: 'nominal', sort: groups, title: options.groupTitle, axis: { labelAngle: 0 } },
      xOffset: { field: 'series', type: 'nominal', sort: series },
      y: { field: 'value', type: 'quantitative', title: options.valueTitle },
      color: { field: 'series', type: 'nominal', sort: series, title: options.seriesTitle, scale: colourScale(series), legend: { labelLimit: 480 } },
    },
  };
  const layers: unknown[] = [bars];
  if (options.rule) {
    layers.push({
      data: { values: [{ value: options.rule.value, label: options.rule.label }] },
      layer: [
        { mark: { type: 'rule', color: '#c0392b', strokeDash: [4, 3] }, encoding: { y: { field: 'value', type: 'quantitative' } } },
        { mark: { type: 'text', align: 'right', dy: -6, color: '#c0392b', x: 'width' }, encoding: { y: { field: 'value', type: 'quantitative' }, text: { field: 'label' } } },
      ],
    });
  }
  return { name: options.name, title: options.title, spec: { ...base(options.title, options.data), layer: layers } };
}

/** One bar of a single-series chart. */
export interface LabelledValue {
  readonly label: string;
  readonly value: number;
}

/** Horizontal bars, one per label (long configuration names read well on the y axis). */
export function bars(options: { name: string; title: string; data: readonly LabelledValue[]; valueTitle: string }): PlotSpec {
  const labels = options.data.map(d => d.label);
  return {
    name: options.name,
    title: options.title,
    spec: {
      ...base(options.title, options.data),
      height: Math.max(120, 28 * labels.length),
      layer: [
        {
          mark: { type: 'bar', tooltip: true },
          encoding: {
            // No axis title: headless vega estimates label widths, and a title would overlap long labels.
            y: { field: 'label', type: 'nominal', sort: labels, title: null, axis: { labelLimit: 480 } },
            x: { field: 'value', type: 'quantitative', title: options.valueTitle },
            color: { field: 'label', type: 'nominal', sort: labels, scale: colourScale(labels), legend: null },
          },
        },
        {
          mark: { type: 'text', align: 'left', dx: 4 },
          encoding: {
            y: { field: 'label', type: 'nominal', sort: labels },
            x: { field: 'value', type: 'quantitative' },
            text: { field: 'value', type: 'quantitative', format: ',.0f' },
          },
        },
      ],
    },
  };
}

/** One point of a line chart. */
export interface LineDatum {
  readonly x: number;
  readonly series: string;
  readonly y: number;
}

/** Lines with points, one per series. */
export function lines(options: {
  name: string;
  title: string;
  data: readonly LineDatum[];
  xTitle: string;
  yTitle: string;
  seriesTitle: string;
  logX?: boolean;
  logY?: boolean;
}): PlotSpec {
  const series = [...new Set(options.data.map(d => d.series))];
  return {
    name: options.name,
    title: options.title,
    spec: {
      ...base(options.title, options.data),
      mark: { type: 'line', point: true, tooltip: true },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: options.xTitle, scale: options.logX ? { type: 'log' } : {} },
        y: { field: 'y', type: 'quantitative', title: options.yTitle, scale: options.logY ? { type: 'log' } : {} },
        color: { field: 'series', type: 'nominal', sort: series, title: options.seriesTitle, scale: colourScale(series), legend: { labelLimit: 480 } },
      },
    },
  };
}

/** One segment of a share chart: `part`'s fraction of `whole`. */
export interface ShareDatum {
  readonly whole: string;
  readonly part: string;
  readonly share: number;
}

/** One horizontal 100 % bar per `whole` (e.g. a policy), split by `part` (e.g. a replica). */
export function shares(options: { name: string; title: string; data: readonly ShareDatum[]; partTitle: string }): PlotSpec {
  const wholes = [...new Set(options.data.map(d => d.whole))];
  const parts = [...new Set(options.data.map(d => d.part))].sort();
  return {
    name: options.name,
    title: options.title,
    spec: {
      ...base(options.title, options.data),
      height: Math.max(120, 28 * wholes.length),
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: { field: 'whole', type: 'nominal', sort: wholes, title: null, axis: { labelLimit: 480 } },
        x: { field: 'share', type: 'quantitative', title: 'share of successful calls', axis: { format: '%' }, scale: { domain: [0, 1] } },
        color: { field: 'part', type: 'nominal', sort: parts, title: options.partTitle, scale: { scheme: 'tableau10' } },
      },
    },
  };
}
