/**
 * Funnels: 2..10 steps, conversion window, order, date range. One bar per step (its width is the conversion from
 * the first step) with the count, conversion from the previous step, drop-off and median time to convert.
 */
import { api, ApiError, queryError, type EventName, type FunnelsResult } from "./api.ts";
import { eventNames } from "./catalog.ts";
import { dateRange, debounce, eventPicker } from "./controls.ts";
import { field, h, replace, select } from "./dom.ts";
import { formatDuration, formatNumber, formatPercent } from "./format.ts";
import type { ViewHandle } from "./live.ts";
import { ORDERS, rangeOf, UNITS, type FunnelsState } from "./state.ts";

export function funnelsRequest(s: FunnelsState): Record<string, unknown> {
  return {
    steps: s.steps.map((event) => ({ event })),
    window: { value: s.window_value, unit: s.window_unit },
    order: s.order,
    ...rangeOf(s),
    timezone: s.timezone,
  };
}

export function funnelsView(initial: FunnelsState, onState: (s: FunnelsState) => void): ViewHandle {
  const state = structuredClone(initial);
  let names: EventName[] = [];
  const form = h("form", { class: "controls", "aria-label": "Funnel query", onsubmit: (e: Event) => e.preventDefault() });
  const status = h("p", { class: "query-status", role: "status" });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const bars = h("div", { class: "funnel" });
  const element = h(
    "section",
    { class: "view funnels", "aria-labelledby": "funnels-title" },
    h("div", { class: "view-head" }, h("h2", { id: "funnels-title" }, "Funnels"), status),
    h("div", { class: "layout" }, form, h("div", { class: "results" }, error, bars)),
  );
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
    replace(
      form,
      h(
        "fieldset",
        {},
        h("legend", {}, "Steps"),
        h(
          "ol",
          { class: "steps" },
          state.steps.map((s, i) =>
            h(
              "li",
              { class: "row step-row" },
              eventPicker(names, s, `Step ${i + 1} event`, (v) => ((state.steps[i] = v), changed(false)), false),
              state.steps.length > 2 && h("button", { type: "button", class: "icon", "aria-label": `Remove step ${i + 1}`, onclick: () => (state.steps.splice(i, 1), changed(true)) }, "×"),
            ),
          ),
        ),
        state.steps.length < 10 &&
          h("button", { type: "button", class: "add", onclick: () => (state.steps.push(""), changed(true), form.querySelectorAll<HTMLElement>(".step-row select")[state.steps.length - 1]?.focus()) }, "+ Add step"),
      ),
      h(
        "fieldset",
        {},
        h("legend", {}, "Conversion"),
        h(
          "div",
          { class: "row" },
          h("input", {
            type: "number",
            min: 1,
            max: 100000,
            "aria-label": "Conversion window",
            value: state.window_value,
            oninput: (e: Event) => {
              const v = Number((e.target as HTMLInputElement).value);
              if (Number.isInteger(v) && v >= 1) ((state.window_value = v), changedText());
            },
          }),
          select({ "aria-label": "Conversion window unit", onchange: (e: Event) => ((state.window_unit = (e.target as HTMLSelectElement).value), changed(false)) }, UNITS, state.window_unit),
        ),
        field("Order", select({ onchange: (e: Event) => ((state.order = (e.target as HTMLSelectElement).value), changed(false)) }, ORDERS, state.order)),
      ),
      h(
        "fieldset",
        { class: "when" },
        h("legend", {}, "Time"),
        dateRange(state, (from, to) => ((state.date_from = from), (state.date_to = to), changed(true))),
        h("p", { class: "hint" }, `Time zone: ${state.timezone}`),
      ),
    );
    if (focusedLabel) form.querySelector<HTMLElement>(`[aria-label="${CSS.escape(focusedLabel)}"]`)?.focus();
  }

  async function run(): Promise<void> {
    controller?.abort();
    if (state.steps.some((s) => !s)) {
      element.dataset.state = "incomplete";
      status.textContent = "";
      error.hidden = true;
      replace(bars, h("p", { class: "empty" }, "Choose an event for every step."));
      return;
    }
    controller = new AbortController();
    const signal = controller.signal;
    element.dataset.state = "loading";
    status.textContent = "Loading…";
    try {
      const res = await api<FunnelsResult>("/api/funnels", funnelsRequest(state), undefined, signal);
      if (disposed || signal.aborted) return;
      error.hidden = true;
      renderResult(res);
      status.textContent = `window ${formatDuration(res.window_seconds)}`;
      element.dataset.state = "ready";
    } catch (err) {
      if (disposed || signal.aborted) return;
      error.hidden = false;
      error.textContent = err instanceof ApiError ? queryError(err) : "The query failed.";
      status.textContent = "";
      element.dataset.state = "error";
    }
  }

  function renderResult(res: FunnelsResult): void {
    const steps = res.results[0]?.steps ?? [];
    const overall = steps.length ? steps[steps.length - 1]!.conversion_from_first : 0;
    replace(
      bars,
      h("p", { class: "funnel-summary" }, h("strong", {}, formatPercent(overall)), ` of ${formatNumber(steps[0]?.count ?? 0)} users converted through all ${steps.length} steps`),
      h(
        "ol",
        { class: "funnel-steps", id: "funnel-steps" },
        steps.map((s, i) =>
          h(
            "li",
            { class: "funnel-step", "data-step": i, "data-count": s.count },
            h("div", { class: "step-head" }, h("span", { class: "step-name" }, `${i + 1}. ${s.event}`), h("span", { class: "step-count" }, `${formatNumber(s.count)} users`)),
            bar(s.conversion_from_first),
            h(
              "div",
              { class: "step-meta" },
              h("span", { class: "conv" }, `${formatPercent(s.conversion_from_first)} of step 1`),
              i > 0 && h("span", {}, `${formatPercent(s.conversion_from_previous)} from previous`),
              i > 0 && h("span", { class: "drop", "data-drop": s.drop_off }, `${formatNumber(s.drop_off)} dropped off`),
              i > 0 && h("span", { class: "median", "data-median": s.median_seconds_from_previous ?? "" }, `median ${formatDuration(s.median_seconds_from_previous)} to convert`),
            ),
          ),
        ),
      ),
      res.notes.length ? h("ul", { class: "notes" }, res.notes.map((n) => h("li", {}, n))) : null,
    );
  }

  renderForm();
  void run();
  void eventNames()
    .catch(() => [])
    .then((n) => {
      if (disposed) return;
      names = n;
      renderForm();
    });
  return {
    element,
    dispose: () => {
      disposed = true;
      controller?.abort();
    },
  };
}

/** A horizontal bar: a `<meter>`-like track with its fill; the width is set through CSSOM, not inline style text. */
function bar(ratio: number): HTMLElement {
  const fill = h("div", { class: "bar-fill" });
  fill.style.width = `${Math.max(0, Math.min(1, ratio)) * 100}%`;
  return h("div", { class: "bar", role: "img", "aria-label": `${formatPercent(ratio)} of step 1` }, fill);
}
