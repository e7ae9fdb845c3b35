/**
 * Incoming (validated) event -> CapturedEvent, the Kafka value. Pure: the request's facts (clock, skew, team,
 * client address) and the uuid generator are parameters, so the same input always gives the same output in
 * tests.
 */
import { CAPTURED_EVENT_VERSION, type CapturedEvent } from "./captured-event.ts";
import { resolveEventTime, type TimeNote } from "./event-time.ts";
import type { IncomingEvent } from "./incoming-event.ts";

/** Facts computed once per request and shared by all of its events. */
export interface RequestFacts {
  nowMs: number;
  /** From `clockSkewMs(sent_at, nowMs)`. */
  skewMs: number;
  teamId: number;
  /** Client address as seen by the server, or "" when IP capture is off. */
  ip: string;
  /** Whether the event's own `$ip` property (server-side SDKs forwarding their user's address) may be used. */
  captureIp: boolean;
  /** UUIDv7 for an event time in ms (Bun.randomUUIDv7 in production; deterministic in tests). */
  newUuid: (ms: number) => string;
}

/** Property set on events whose timestamp we did not use, holding (a prefix of) what the client sent. */
export const TIME_NOTE_PROPERTY: Record<TimeNote, string> = {
  unparseable: "$timestamp_unparseable",
  out_of_range: "$timestamp_out_of_range",
  clamped_future: "$timestamp_clamped",
};

const MARKER_MAX = 64;

const isObject = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === "object" && !Array.isArray(x);

export function normalizeEvent(e: IncomingEvent, r: RequestFacts): CapturedEvent {
  const time = resolveEventTime(e, r.nowMs, r.skewMs);
  let properties = e.properties;
  if (time.note) {
    const sent = e.offset !== undefined && e.offset !== null ? e.offset : e.timestamp;
    properties = { ...properties, [TIME_NOTE_PROPERTY[time.note]]: String(sent).slice(0, MARKER_MAX) };
  }
  const propIp = properties.$ip;
  const ip = !r.captureIp ? "" : typeof propIp === "string" && propIp !== "" ? propIp : r.ip;

  const out: CapturedEvent = {
    v: CAPTURED_EVENT_VERSION,
    uuid: e.uuid ?? r.newUuid(time.ms),
    team_id: r.teamId,
    event: e.event,
    distinct_id: e.distinct_id,
    timestamp: new Date(time.ms).toISOString(),
    properties,
    ip,
    received_at: new Date(r.nowMs).toISOString(),
  };
  // SDKs put person properties either at the top level or inside `properties` ($identify); carry the union, the
  // top level winning, so the consumer reads one place.
  const set = mergeObjects(properties.$set, e.$set);
  if (set) out.$set = withoutNul(set);
  const setOnce = mergeObjects(properties.$set_once, e.$set_once);
  if (setOnce) out.$set_once = withoutNul(setOnce);
  return personSafe(out);
}

/**
 * PostgreSQL text and jsonb cannot hold U+0000 (the consumer keeps persons there), so what persons are made of
 * gets U+FFFD instead, as PostHog does: distinct_id, $set, $set_once, and the properties naming other ids or
 * keys to unset. Everything else keeps its NUL (ClickHouse stores it).
 */
const NUL = "\u0000";
const PERSON_PROPERTIES = ["$anon_distinct_id", "alias", "$unset"] as const;

function personSafe(out: CapturedEvent): CapturedEvent {
  if (out.distinct_id.includes(NUL)) out.distinct_id = out.distinct_id.replaceAll(NUL, "\ufffd");
  for (const key of PERSON_PROPERTIES) {
    const value = out.properties[key];
    if (value !== undefined && hasNul(value)) out.properties = { ...out.properties, [key]: withoutNul(value) };
  }
  return out;
}

/** Depth is bounded by validation (MAX_PROPERTIES_DEPTH), so recursion is safe. */
function hasNul(v: unknown): boolean {
  if (typeof v === "string") return v.includes(NUL);
  if (Array.isArray(v)) return v.some(hasNul);
  if (v !== null && typeof v === "object") {
    for (const k in v) if (k.includes(NUL) || hasNul((v as Record<string, unknown>)[k])) return true;
  }
  return false;
}

function withoutNul<T>(v: T): T {
  if (!hasNul(v)) return v;
  if (typeof v === "string") return v.replaceAll(NUL, "\ufffd") as T;
  if (Array.isArray(v)) return v.map(withoutNul) as T;
  // fromEntries defines properties: a `__proto__` key stays a key.
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k.replaceAll(NUL, "\ufffd"), withoutNul(x)])) as T;
}

function mergeObjects(inner: unknown, top: Record<string, unknown> | null | undefined): Record<string, unknown> | undefined {
  const a = isObject(inner) ? inner : undefined;
  const b = top ?? undefined;
  if (a && b) return { ...a, ...b };
  return b ?? a;
}
