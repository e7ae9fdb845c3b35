/**
 * Live events: the project's newest events, polled every few seconds. The first request takes the newest page;
 * later ones ask only for events at or after the newest seen (`after`, inclusive, so ties in the same second are
 * not lost) and merge by uuid. New rows are marked for a moment so arrivals are visible.
 */
import { api, ApiError, type EventRecord } from "./api.ts";
import { h, replace } from "./dom.ts";
import { formatAgo, formatTime } from "./format.ts";

export const POLL_MS = 3000;
const KEEP = 100;
/** Properties shown in the row; the rest are in the expanded JSON. */
const HEADLINE = ["$current_url", "$pathname", "$browser", "$os", "$lib", "plan", "amount"];

export interface ViewHandle {
  element: HTMLElement;
  dispose: () => void;
}

function headline(props: Record<string, unknown> | null): string {
  if (!props) return "";
  const shown = HEADLINE.filter((k) => props[k] !== undefined && props[k] !== null).slice(0, 3);
  const rest = Object.keys(props).filter((k) => !shown.includes(k) && !k.startsWith("$")).slice(0, Math.max(0, 3 - shown.length));
  return [...shown, ...rest].map((k) => `${k}: ${typeof props[k] === "string" ? props[k] : JSON.stringify(props[k])}`).join(" · ");
}

function row(e: EventRecord, fresh: boolean): HTMLDetailsElement {
  const full = { uuid: e.uuid, event: e.event, distinct_id: e.distinct_id, timestamp: e.timestamp, properties: e.properties ?? `(${e.properties_bytes} bytes, too large to show)` };
  return h(
    "details",
    { class: fresh ? "event fresh" : "event", "data-uuid": e.uuid },
    h(
      "summary",
      {},
      h("span", { class: "ev-name" }, e.event),
      h("span", { class: "ev-person", title: "distinct_id" }, e.distinct_id),
      h("time", { class: "ev-time", datetime: e.timestamp, title: formatTime(e.timestamp) }, formatAgo(e.timestamp)),
      h("span", { class: "ev-props" }, headline(e.properties)),
    ),
    h("pre", { class: "ev-json" }, JSON.stringify(full, null, 2)),
  );
}

export function liveView(): ViewHandle {
  const list = h("div", { class: "events", role: "list", "aria-label": "Newest events" });
  const status = h("p", { class: "live-status", role: "status" }, "Loading…");
  const error = h("p", { class: "error", role: "alert", hidden: true });
  let paused = false;
  const pause = h("button", { type: "button", class: "secondary", "aria-pressed": "false" }, "Pause");
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (!paused) void poll();
  });
  // Column titles for sighted users; each row's cells carry their own meaning (title attributes) for the rest.
  const columns = h(
    "div",
    { class: "event-columns", "aria-hidden": "true" },
    h("span", {}, "Event"),
    h("span", {}, "Person (distinct_id)"),
    h("span", {}, "When"),
    h("span", {}, "Properties"),
  );
  const element = h(
    "section",
    { class: "view live", "aria-labelledby": "live-title" },
    h("div", { class: "view-head" }, h("h2", { id: "live-title" }, "Live events"), h("div", { class: "live-controls" }, status, pause)),
    error,
    h("div", { class: "events-panel" }, columns, list),
  );

  const events = new Map<string, EventRecord>();
  let newest: string | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let disposed = false;
  let first = true;
  const controller = new AbortController();

  async function poll(): Promise<void> {
    clearTimeout(timer);
    // A hidden tab does not poll (no load on ClickHouse for nobody); it catches up when shown again.
    if (document.hidden) return;
    try {
      const q = new URLSearchParams({ limit: String(KEEP) });
      if (newest) q.set("after", newest);
      const res = await api<{ results: EventRecord[] }>(`/api/events?${q}`, undefined, undefined, controller.signal);
      if (disposed) return;
      const fresh = new Set<string>();
      for (const e of res.results) {
        if (!events.has(e.uuid)) fresh.add(e.uuid);
        events.set(e.uuid, e);
      }
      const sorted = [...events.values()].sort((a, b) => (a.timestamp < b.timestamp ? 1 : a.timestamp > b.timestamp ? -1 : a.uuid < b.uuid ? 1 : -1)).slice(0, KEEP);
      events.clear();
      for (const e of sorted) events.set(e.uuid, e);
      newest = sorted[0]?.timestamp ?? newest;
      if (first || fresh.size) {
        // Keep rows the user expanded open across refreshes.
        const open = new Set([...list.querySelectorAll<HTMLDetailsElement>("details[open]")].map((d) => d.dataset.uuid));
        replace(
          list,
          sorted.length
            ? sorted.map((e) => {
                const r = row(e, !first && fresh.has(e.uuid));
                if (open.has(e.uuid)) r.open = true;
                return r;
              })
            : h("p", { class: "empty" }, "No events yet. Send one to capture and it appears here within seconds."),
        );
      } else {
        for (const t of list.querySelectorAll<HTMLTimeElement>("time.ev-time")) t.textContent = formatAgo(t.dateTime);
      }
      first = false;
      error.hidden = true;
      status.textContent = `${sorted.length} newest · updated ${new Date().toLocaleTimeString()} · refreshes every ${POLL_MS / 1000} s`;
    } catch (err) {
      if (disposed || (err instanceof DOMException && err.name === "AbortError")) return;
      error.hidden = false;
      error.textContent = err instanceof ApiError ? `Could not load events: ${err.detail}` : "Could not load events.";
    }
    if (!disposed && !paused) timer = setTimeout(() => void poll(), POLL_MS);
  }
  const onVisibility = () => {
    if (!document.hidden && !paused && !disposed) void poll();
  };
  document.addEventListener("visibilitychange", onVisibility);
  void poll();
  return {
    element,
    dispose: () => {
      disposed = true;
      clearTimeout(timer);
      controller.abort();
      document.removeEventListener("visibilitychange", onVisibility);
    },
  };
}
