/**
 * The view's state, kept in the URL (`?view=trends&q=<json>`) so a chart can be bookmarked or shared. Only what
 * describes the question is there: never the key. Decoding is defensive (a link may be hand-edited): anything
 * malformed falls back to the default for that field, and the API validates the rest.
 */

export type View = "live" | "trends" | "funnels";
export const VIEWS: readonly View[] = ["live", "trends", "funnels"];

export interface Filter {
  key: string;
  operator: string;
  value: string;
}

export interface TrendsState {
  series: { event: string; math: string }[];
  interval: string;
  date_from: string;
  date_to: string;
  filters: Filter[];
  breakdown: string;
  chart: "line" | "bar";
  timezone: string;
}

export interface FunnelsState {
  steps: string[];
  window_value: number;
  window_unit: string;
  order: string;
  date_from: string;
  date_to: string;
  timezone: string;
}

export const MATHS = [
  ["total", "Total events"],
  ["unique_users", "Unique users"],
  ["per_user_avg", "Events per user"],
] as const;
export const INTERVALS = [
  ["hour", "Hour"],
  ["day", "Day"],
  ["week", "Week"],
  ["month", "Month"],
] as const;
export const RANGES = [
  ["-24h", "Last 24 hours"],
  ["-7d", "Last 7 days"],
  ["-14d", "Last 14 days"],
  ["-30d", "Last 30 days"],
  ["-90d", "Last 90 days"],
  ["custom", "Custom dates"],
] as const;
export const OPERATORS = [
  ["eq", "equals"],
  ["neq", "does not equal"],
  ["contains", "contains"],
  ["not_contains", "does not contain"],
  ["regex", "matches regex"],
  ["gt", "greater than"],
  ["lt", "less than"],
  ["is_set", "is set"],
  ["is_not_set", "is not set"],
  ["in", "is one of (comma-separated)"],
] as const;
export const ORDERS = [
  ["ordered", "In order (others in between allowed)"],
  ["strict", "Strict order (nothing in between)"],
  ["unordered", "Any order"],
] as const;
export const UNITS = [
  ["minute", "minutes"],
  ["hour", "hours"],
  ["day", "days"],
] as const;

const values = (list: readonly (readonly [string, string])[]) => list.map(([v]) => v);
const oneOf = (value: unknown, list: readonly (readonly [string, string])[], fallback: string) =>
  typeof value === "string" && values(list).includes(value) ? value : fallback;
const text = (value: unknown, fallback = "", max = 200) => (typeof value === "string" ? value.slice(0, max) : fallback);

export function browserTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

export function defaultTrends(): TrendsState {
  return { series: [{ event: "", math: "total" }], interval: "day", date_from: "-7d", date_to: "", filters: [], breakdown: "", chart: "line", timezone: browserTimeZone() };
}

export function defaultFunnels(): FunnelsState {
  return { steps: ["", ""], window_value: 14, window_unit: "day", order: "ordered", date_from: "-30d", date_to: "", timezone: browserTimeZone() };
}

function obj(value: unknown): Record<string, unknown> {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

export function decodeTrends(raw: unknown): TrendsState {
  const o = obj(raw);
  const d = defaultTrends();
  const series = Array.isArray(o.series)
    ? o.series.slice(0, 10).map((s) => ({ event: text(obj(s).event), math: oneOf(obj(s).math, MATHS, "total") }))
    : d.series;
  const filters = Array.isArray(o.filters)
    ? o.filters.slice(0, 20).map((f) => ({ key: text(obj(f).key), operator: oneOf(obj(f).operator, OPERATORS, "eq"), value: text(obj(f).value, "", 2000) }))
    : [];
  return {
    series: series.length ? series : d.series,
    interval: oneOf(o.interval, INTERVALS, d.interval),
    date_from: text(o.date_from, d.date_from, 40) || d.date_from,
    date_to: text(o.date_to, "", 40),
    filters,
    breakdown: text(o.breakdown),
    chart: o.chart === "bar" ? "bar" : "line",
    timezone: text(o.timezone, d.timezone, 64) || d.timezone,
  };
}

export function decodeFunnels(raw: unknown): FunnelsState {
  const o = obj(raw);
  const d = defaultFunnels();
  const steps = Array.isArray(o.steps) ? o.steps.slice(0, 10).map((s) => text(s)) : d.steps;
  while (steps.length < 2) steps.push("");
  const w = Number(o.window_value);
  return {
    steps,
    window_value: Number.isInteger(w) && w >= 1 && w <= 100_000 ? w : d.window_value,
    window_unit: oneOf(o.window_unit, UNITS, d.window_unit),
    order: oneOf(o.order, ORDERS, d.order),
    date_from: text(o.date_from, d.date_from, 40) || d.date_from,
    date_to: text(o.date_to, "", 40),
    timezone: text(o.timezone, d.timezone, 64) || d.timezone,
  };
}

export interface Location {
  view: View;
  q: unknown;
}

export function readLocation(search = window.location.search): Location {
  const p = new URLSearchParams(search);
  const view = (VIEWS as readonly string[]).includes(p.get("view") ?? "") ? (p.get("view") as View) : "live";
  let q: unknown = {};
  try {
    q = JSON.parse(p.get("q") ?? "{}");
  } catch {
    q = {};
  }
  return { view, q };
}

export function urlFor(view: View, q?: unknown): string {
  const p = new URLSearchParams({ view });
  if (q !== undefined) p.set("q", JSON.stringify(q));
  return `${window.location.pathname}?${p.toString()}`;
}

/** Records a changed question in the URL without adding a history entry per keystroke. */
export function writeLocation(view: View, q: unknown): void {
  const url = urlFor(view, q);
  if (url !== window.location.pathname + window.location.search) history.replaceState(null, "", url);
}

/** The API's date fields for a range choice: presets are relative, custom dates are local dates. */
export function rangeOf(s: { date_from: string; date_to: string }): { date_from: string; date_to?: string } {
  return s.date_to ? { date_from: s.date_from, date_to: s.date_to } : { date_from: s.date_from };
}

export function isPreset(dateFrom: string, dateTo: string): boolean {
  return !dateTo && RANGES.some(([v]) => v === dateFrom && v !== "custom");
}
