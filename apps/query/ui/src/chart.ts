/**
 * The trend chart: uPlot (MIT, small, canvas) with its legend showing each series' value under the cursor.
 * x is the bucket index (labels come from the API: dates, or local date-times for hours); bars are grouped
 * side by side with our own small path builder.
 */
import uPlot from "uplot";

export const PALETTE = ["#2f6fde", "#e5793a", "#2a9d6f", "#c0417d", "#7b5cd6", "#b59a16", "#1f9bb5", "#d64545", "#6b7a8f", "#8a5a2b"];

export interface ChartSeries {
  label: string;
  data: number[];
}

/** Side-by-side bars: each series takes its slot of 80% of the bucket width. */
function groupedBars(count: number, slot: number): uPlot.Series.PathBuilder {
  return (u, seriesIdx, idx0, idx1) => {
    const fill = new Path2D();
    const xs = u.data[0];
    const ys = u.data[seriesIdx]!;
    const step = xs.length > 1 ? Math.abs(u.valToPos(xs[1]!, "x", true) - u.valToPos(xs[0]!, "x", true)) : u.bbox.width / 2;
    const width = (step * 0.8) / count;
    const base = u.valToPos(0, "y", true);
    for (let i = idx0; i <= idx1; i++) {
      const y = ys[i];
      if (y === null || y === undefined) continue;
      const cx = u.valToPos(xs[i]!, "x", true);
      const left = cx - (step * 0.8) / 2 + slot * width;
      const top = u.valToPos(y, "y", true);
      fill.rect(Math.round(left), Math.round(top), Math.max(1, Math.round(width) - 1), Math.round(base - top));
    }
    return { stroke: fill, fill };
  };
}

export function shortLabel(label: string, interval: string): string {
  if (interval === "hour") return label.slice(5, 16).replace("T", " ");
  if (interval === "month") return label.slice(0, 7);
  return label.slice(5, 10);
}

export function renderChart(target: HTMLElement, labels: string[], series: ChartSeries[], kind: "line" | "bar", interval: string): () => void {
  const xs = labels.map((_, i) => i);
  const width = () => Math.max(280, target.clientWidth);
  const height = () => (target.clientWidth < 500 ? 240 : 320);
  const opts: uPlot.Options = {
    width: width(),
    height: height(),
    scales: { x: { time: false, range: (_u, min, max) => [min - 0.5, max + 0.5] }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [
      {
        values: (_u, splits) => splits.map((v) => (Number.isInteger(v) && labels[v] !== undefined ? shortLabel(labels[v]!, interval) : "")),
        space: 60,
        grid: { show: false },
      },
      { size: 60, grid: { stroke: "#e6e8ee" } },
    ],
    cursor: { drag: { x: false, y: false }, points: { size: 8 } },
    legend: { live: true },
    series: [
      { label: "Bucket", value: (_u, v) => (v === null || labels[v] === undefined ? "–" : labels[v]!) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: PALETTE[i % PALETTE.length]!,
        width: 2,
        fill: kind === "bar" ? PALETTE[i % PALETTE.length]! : undefined,
        points: { show: kind === "line" && labels.length <= 60 },
        ...(kind === "bar" ? { paths: groupedBars(series.length, i) } : {}),
        value: (_u: uPlot, v: number | null) => (v === null ? "–" : v.toLocaleString(undefined, { maximumFractionDigits: 2 })),
      })),
    ],
  };
  const plot = new uPlot(opts, [xs, ...series.map((s) => s.data)], target);
  let lastWidth = width();
  // Only on width changes: the plot's own height change would otherwise re-trigger the observer.
  const resize = new ResizeObserver(() => {
    if (width() === lastWidth) return;
    lastWidth = width();
    plot.setSize({ width: lastWidth, height: height() });
  });
  resize.observe(target);
  return () => {
    resize.disconnect();
    plot.destroy();
  };
}
