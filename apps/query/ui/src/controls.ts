/** Form controls shared by the trends and funnels views. */
import type { EventName } from "./api.ts";
import { h, select } from "./dom.ts";
import { formatNumber } from "./format.ts";
import { isPreset, RANGES } from "./state.ts";

/** An event `<select>`: the project's names (with counts), the current value kept even if it is not among them. */
export function eventPicker(names: EventName[], value: string, label: string, onChange: (v: string) => void, allowAll: boolean): HTMLSelectElement {
  const opts: [string, string][] = [];
  if (allowAll) opts.push(["", "All events"]);
  else if (!value) opts.push(["", "Choose an event…"]);
  for (const n of names) opts.push([n.event, `${n.event} (${formatNumber(n.count)})`]);
  if (value && !names.some((n) => n.event === value)) opts.push([value, value]);
  return select({ "aria-label": label, class: "event-picker", onchange: (e: Event) => onChange((e.target as HTMLSelectElement).value) }, opts, value);
}

/** A preset range `<select>`, plus from/to date inputs when "Custom dates" is chosen. */
export function dateRange(s: { date_from: string; date_to: string }, onChange: (from: string, to: string) => void): HTMLElement {
  const custom = !isPreset(s.date_from, s.date_to);
  const today = new Date().toISOString().slice(0, 10);
  const preset = select(
    {
      "aria-label": "Date range",
      onchange: (e: Event) => {
        const v = (e.target as HTMLSelectElement).value;
        if (v === "custom") onChange(new Date(Date.now() - 7 * 86_400_000).toISOString().slice(0, 10), today);
        else onChange(v, "");
      },
    },
    RANGES,
    custom ? "custom" : s.date_from,
  );
  const wrap = h("div", { class: "date-range" }, preset);
  if (custom) {
    const from = h("input", { type: "date", "aria-label": "From date", value: /^\d{4}-\d{2}-\d{2}$/.test(s.date_from) ? s.date_from : "" });
    const to = h("input", { type: "date", "aria-label": "To date (inclusive)", value: /^\d{4}-\d{2}-\d{2}$/.test(s.date_to) ? s.date_to : "" });
    const changed = () => {
      if (from.value) onChange(from.value, to.value || today);
    };
    from.addEventListener("change", changed);
    to.addEventListener("change", changed);
    wrap.append(h("div", { class: "date-inputs" }, from, h("span", { "aria-hidden": "true" }, "→"), to));
  }
  return wrap;
}

/** `<datalist>` of property keys for filter and breakdown inputs (typing any key is still allowed). */
export function keyList(id: string, keys: string[]): HTMLDataListElement {
  return h("datalist", { id }, ...keys.map((k) => h("option", { value: k })));
}

/** Runs `fn` once input has been quiet for `ms` (text fields would otherwise query per keystroke). */
export function debounce<A extends unknown[]>(fn: (...a: A) => void, ms: number): (...a: A) => void {
  let t: ReturnType<typeof setTimeout> | undefined;
  return (...a: A) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
}
