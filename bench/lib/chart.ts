/**
 * Benchmark charts as SVG files, drawn by vega-lite/vega rather than by hand: the spec is compiled by vega-lite
 * and rendered by a headless vega View (renderer "none", then toSVG), which needs neither a DOM nor a canvas,
 * so it runs in a plain Bun process on a CI machine.
 */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

export interface Series {
  name: string;
  /** [x, y] pairs, drawn in the order given (a lag-over-time series is not necessarily sorted by x). */
  points: [number, number][];
}

export interface LineChartOptions {
  title: string;
  xTitle: string;
  yTitle: string;
  series: Series[];
  /** Log scale on y, for latencies that span orders of magnitude across offered rates. */
  logY?: boolean;
  width?: number;
  height?: number;
}

export interface HistogramOptions {
  title: string;
  values: number[];
  /** Number of equal-width bins between the smallest and the largest value. */
  bins: number;
  xTitle?: string;
  yTitle?: string;
  width?: number;
  height?: number;
}

const DEFAULT_WIDTH = 640;
const DEFAULT_HEIGHT = 360;

/** What every chart here shares: schema, title, size, inline data. */
function frame(opts: { title: string; width?: number; height?: number }, rows: object[]) {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: opts.title,
    width: opts.width ?? DEFAULT_WIDTH,
    height: opts.height ?? DEFAULT_HEIGHT,
    data: { values: rows },
  };
}

/** One line per series (with a dot per point, so single-point series stay visible), legend in series order. */
export async function lineChart(opts: LineChartOptions): Promise<string> {
  if (opts.series.length === 0) throw new RangeError("lineChart: at least one series is needed");
  const rows: { series: string; x: number; y: number; i: number }[] = [];
  const names = new Set<string>();
  for (const s of opts.series) {
    if (names.has(s.name)) throw new RangeError(`lineChart: duplicate series name ${JSON.stringify(s.name)}`);
    names.add(s.name);
    if (s.points.length === 0) throw new RangeError(`lineChart: series ${JSON.stringify(s.name)} has no points`);
    s.points.forEach(([x, y], i) => {
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        throw new RangeError(`lineChart: series ${JSON.stringify(s.name)} point ${i} is not finite: [${x}, ${y}]`);
      }
      // A log scale maps 0 and negatives to NaN and vega would silently drop or garble the line.
      if (opts.logY && y <= 0) {
        throw new RangeError(`lineChart: logY needs y > 0; series ${JSON.stringify(s.name)} point ${i} has y=${y}`);
      }
      rows.push({ series: s.name, x, y, i });
    });
  }
  const spec: TopLevelSpec = {
    ...frame(opts, rows),
    mark: { type: "line", point: true, tooltip: false },
    encoding: {
      x: { field: "x", type: "quantitative", title: opts.xTitle, scale: { zero: false } },
      y: {
        field: "y",
        type: "quantitative",
        title: opts.yTitle,
        scale: opts.logY ? { type: "log" } : { zero: true },
      },
      // Fixed domain: the legend and colours follow the caller's order, not alphabetical order.
      color: { field: "series", type: "nominal", title: null, scale: { domain: [...names] } },
      order: { field: "i", type: "quantitative" },
    },
  };
  return render(spec);
}

/**
 * Histogram with exactly `bins` equal-width bins. The binning is done here rather than by vega-lite's `bin`
 * transform, which picks "nice" boundaries and so a bin count of its own: a latency histogram compared across
 * runs needs the count the caller asked for.
 */
export async function histogram(opts: HistogramOptions): Promise<string> {
  if (!Number.isInteger(opts.bins) || opts.bins < 1) throw new RangeError(`histogram: bins must be an integer >= 1, got ${opts.bins}`);
  if (opts.values.length === 0) throw new RangeError("histogram: no values");
  let min = Infinity;
  let max = -Infinity;
  for (const v of opts.values) {
    if (!Number.isFinite(v)) throw new RangeError(`histogram: value is not finite: ${v}`);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  // All values equal: give the single spike a unit-wide range so it still has a width to draw.
  if (min === max) {
    min -= 0.5;
    max += 0.5;
  }
  const width = (max - min) / opts.bins;
  const counts = new Array<number>(opts.bins).fill(0);
  for (const v of opts.values) {
    // The maximum itself belongs to the last bin (closed on the right), as in every histogram tool.
    const k = Math.min(opts.bins - 1, Math.floor((v - min) / width));
    counts[k] = (counts[k] ?? 0) + 1;
  }
  const rows = counts.map((count, k) => ({ x0: min + k * width, x1: k === opts.bins - 1 ? max : min + (k + 1) * width, count }));
  const spec: TopLevelSpec = {
    ...frame(opts, rows),
    mark: { type: "bar", tooltip: false, stroke: "white", strokeWidth: 0.5 },
    encoding: {
      x: { field: "x0", type: "quantitative", title: opts.xTitle ?? "value", scale: { zero: false, nice: false } },
      x2: { field: "x1" },
      y: { field: "count", type: "quantitative", title: opts.yTitle ?? "count" },
      // Explicit base: with x2 given and no y2, vega-lite reads the bars as horizontal ranges of fixed height.
      y2: { datum: 0 },
    },
  };
  return render(spec);
}

/** Writes an SVG (creating its folder) and returns the path, so callers can print where the chart went. */
export async function writeChart(path: string, svg: string): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await Bun.write(path, svg);
  return path;
}

async function render(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    // Releases the dataflow's timers and listeners; a bench run renders many charts in one process.
    view.finalize();
  }
}
