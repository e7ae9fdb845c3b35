/**
 * Trends: series (event + math), property filters, breakdown, interval, date range; a line or bar chart with a
 * live legend, and every number in a table below. Any change re-runs POST /api/trends (text fields after a pause)
 * and is written to the URL.
 */
import { api, ApiError, queryError, type EventName, type TrendsResult } from "./api.ts";
import { eventNames, propertyKeys } from "./catalog.ts";
import { renderChart, PALETTE } from "./chart.ts";
import { dateRange, debounce, eventPicker, keyList } from "./controls.ts";
import { field, h, replace, select } from "./dom.ts";
import { formatNumber } from "./format.ts";
import type { ViewHandle } from "./live.ts";
import { INTERVALS, MATHS, OPERATORS, rangeOf, type Filter, type TrendsState } from "./state.ts";

const LETTERS = "ABCDEFGHIJ";
export const BREAKDOWN_LIMIT = 10;
const mathLabel = (m: string) => MATHS.find(([v]) => v === m)?.[1] ?? m;

/** The API filter for a row of the form; values typed as text become numbers where the operator needs one. */
export function apiFilter(f: Filter): Record<string, unknown> | null {
  if (!f.key) return null;
  if (f.operator === "is_set" || f.operator === "is_not_set") return { key: f.key, operator: f.operator };
  if (f.operator === "gt" || f.operator === "lt") {
    const n = Number(f.value);
    return f.value.trim() === "" || !Number.isFinite(n) ? null : { key: f.key, operator: f.operator, value: n };
  }
  if (f.operator === "in") {
    const list = f.value.split(",").map((x) => x.trim()).filter(Boolean);
    return list.length ? { key: f.key, operator: "in", value: list } : null;
  }
  if (f.operator === "regex" && !f.value) return null;
  return { key: f.key, operator: f.operator, value: f.value };
}

export function trendsRequest(s: TrendsState): Record<string, unknown> {
  return {
    series: s.series.map((x) => ({ event: x.event || null, math: x.math })),
    filters: s.filters.map(apiFilter).filter((f) => f !== null),
    interval: s.interval,
    ...rangeOf(s),
    timezone: s.timezone,
    // Ten values (+ $other) keep the chart and its legend readable; the API allows up to 100.
    ...(s.breakdown ? { breakdown: [s.breakdown], breakdown_limit: BREAKDOWN_LIMIT } : {}),
  };
}

/** "A. signup · Unique users"; with a breakdown the value leads, and a single series needs no more than it. */
export function seriesLabel(s: TrendsState, r: TrendsResult["series"][number]): string {
  const base = `${LETTERS[r.series]}. ${r.event ?? "All events"} · ${mathLabel(r.math)}`;
  if (!r.breakdown_value) return base;
  const value = r.breakdown_value.join(", ");
  return s.series.length === 1 ? value : `${value} (${base})`;
}

export function trendsView(initial: TrendsState, onState: (s: TrendsState) => void): ViewHandle {
  const state = structuredClone(initial);
  let names: EventName[] = [];
  let keys: string[] = [];
  const form = h("form", { class: "controls", "aria-label": "Trend query", onsubmit: (e: Event) => e.preventDefault() });
  const status = h("p", { class: "query-status", role: "status" });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const chart = h("div", { class: "chart", "aria-hidden": "true" });
  const table = h("div", { class: "table-wrap" });
  const element = h(
    "section",
    { class: "view trends", "aria-labelledby": "trends-title" },
    h("div", { class: "view-head" }, h("h2", { id: "trends-title" }, "Trends"), status),
    h("div", { class: "layout" }, form, h("div", { class: "results" }, error, chart, table)),
  );
  let destroyChart: (() => void) | null = null;
  let controller: AbortController | null = null;
  let disposed = false;

  const changed = (rebuild: boolean) => {
    onState(state);
    if (rebuild) renderForm();
    void run();
  };
  const changedText = debounce(() => changed(false), 400);

  function renderForm(): void {
    const focusedLabel = document.activeElement?.getAttribute("aria-label");
    const series = state.series.map((s, i) =>
      h(
        "div",
        { class: "series-row" },
        h("span", { class: "badge", "data-color": i % PALETTE.length }, LETTERS[i]!),
        eventPicker(names, s.event, `Series ${LETTERS[i]} event`, (v) => ((s.event = v), changed(false)), true),
        state.series.length > 1 &&
          h("button", { type: "button", class: "icon", "aria-label": `Remove series ${LETTERS[i]}`, onclick: () => (state.series.splice(i, 1), changed(true)) }, "×"),
        select({ "aria-label": `Series ${LETTERS[i]} math`, class: "math", onchange: (e: Event) => ((s.math = (e.target as HTMLSelectElement).value), changed(false)) }, MATHS, s.math),
      ),
    );
    const filters = state.filters.map((f, i) => {
      const needsValue = f.operator !== "is_set" && f.operator !== "is_not_set";
      return h(
        "div",
        { class: "filter-row" },
        h("input", { type: "text", class: "key", list: "property-keys", placeholder: "property", "aria-label": `Filter ${i + 1} property`, value: f.key, oninput: (e: Event) => ((f.key = (e.target as HTMLInputElement).value), changedText()) }),
        h("button", { type: "button", class: "icon", "aria-label": `Remove filter ${i + 1}`, onclick: () => (state.filters.splice(i, 1), changed(true)) }, "×"),
        select({ "aria-label": `Filter ${i + 1} operator`, class: "op", onchange: (e: Event) => ((f.operator = (e.target as HTMLSelectElement).value), changed(true)) }, OPERATORS, f.operator),
        needsValue &&
          h("input", { type: "text", class: "val", placeholder: "value", "aria-label": `Filter ${i + 1} value`, value: f.value, oninput: (e: Event) => ((f.value = (e.target as HTMLInputElement).value), changedText()) }),
      );
    });
    replace(
      form,
      h(
        "fieldset",
        {},
        h("legend", {}, "Series"),
        series,
        state.series.length < 10 &&
          h("button", { type: "button", class: "add", onclick: () => (state.series.push({ event: "", math: "total" }), changed(true), focusLast(".series-row select")) }, "+ Add series"),
      ),
      h(
        "fieldset",
        {},
        h("legend", {}, "Filters"),
        filters,
        h("button", { type: "button", class: "add", onclick: () => (state.filters.push({ key: "", operator: "eq", value: "" }), changed(true), focusLast(".filter-row input")) }, "+ Add filter"),
      ),
      h(
        "fieldset",
        {},
        h("legend", {}, "Breakdown"),
        h("input", { type: "text", list: "property-keys", placeholder: "property, e.g. $browser", "aria-label": "Breakdown property", value: state.breakdown, oninput: (e: Event) => ((state.breakdown = (e.target as HTMLInputElement).value.trim()), changedText()) }),
      ),
      h(
        "fieldset",
        { class: "when" },
        h("legend", {}, "Time"),
        dateRange(state, (from, to) => ((state.date_from = from), (state.date_to = to), changed(true))),
        field("Interval", select({ onchange: (e: Event) => ((state.interval = (e.target as HTMLSelectElement).value), changed(false)) }, INTERVALS, state.interval)),
        field("Chart", select({ onchange: (e: Event) => ((state.chart = (e.target as HTMLSelectElement).value === "bar" ? "bar" : "line"), changed(false)) }, [["line", "Line"], ["bar", "Bar"]], state.chart)),
        h("p", { class: "hint" }, `Time zone: ${state.timezone}`),
      ),
      keyList("property-keys", keys),
    );
    if (focusedLabel) form.querySelector<HTMLElement>(`[aria-label="${CSS.escape(focusedLabel)}"]`)?.focus();
  }

  function focusLast(selector: string): void {
    const all = form.querySelectorAll<HTMLElement>(selector);
    all[all.length - 1]?.focus();
  }

  async function run(): Promise<void> {
    controller?.abort();
    controller = new AbortController();
    const signal = controller.signal;
    element.dataset.state = "loading";
    status.textContent = "Loading…";
    try {
      const res = await api<TrendsResult>("/api/trends", trendsRequest(state), undefined, signal);
      if (disposed || signal.aborted) return;
      error.hidden = true;
      renderResult(res);
      status.textContent = `${res.labels.length} × ${res.interval} · ${res.labels[0]?.slice(0, 10) ?? ""} to ${res.labels[res.labels.length - 1]?.slice(0, 10) ?? ""} · ${state.timezone}`;
      element.dataset.state = "ready";
    } catch (err) {
      if (disposed || signal.aborted) return;
      error.hidden = false;
      error.textContent = err instanceof ApiError ? queryError(err) : "The query failed.";
      status.textContent = "";
      element.dataset.state = "error";
    }
  }

  function renderResult(res: TrendsResult): void {
    destroyChart?.();
    chart.replaceChildren();
    const labels = res.series.map((r) => seriesLabel(state, r));
    destroyChart = renderChart(chart, res.labels, res.series.map((r, i) => ({ label: labels[i]!, data: r.data })), state.chart, res.interval);
    replace(
      table,
      h(
        "table",
        { id: "trend-table" },
        h("caption", {}, "Numbers behind the chart"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Series"), h("th", { scope: "col" }, "Total"), res.labels.map((l) => h("th", { scope: "col" }, l)))),
        h(
          "tbody",
          {},
          res.series.map((r, i) =>
            h(
              "tr",
              { "data-series": i },
              h("th", { scope: "row" }, h("span", { class: "swatch", "data-color": i % PALETTE.length }), labels[i]!),
              h("td", { class: "total", "data-value": r.total }, formatNumber(r.total)),
              r.data.map((v) => h("td", { "data-value": v }, formatNumber(v))),
            ),
          ),
        ),
      ),
    );
  }

  renderForm();
  void run();
  // Pickers fill in when the catalog arrives; the query does not wait for it.
  void Promise.all([eventNames().catch(() => []), propertyKeys().catch(() => [])]).then(([n, k]) => {
    if (disposed) return;
    names = n;
    keys = k;
    renderForm();
  });
  return {
    element,
    dispose: () => {
      disposed = true;
      controller?.abort();
      destroyChart?.();
    },
  };
}
