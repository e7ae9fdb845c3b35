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
  if (set) out.$set = set;
  const setOnce = mergeObjects(properties.$set_once, e.$set_once);
  if (setOnce) out.$set_once = setOnce;
  return out;
}

function mergeObjects(inner: unknown, top: Record<string, unknown> | null | undefined): Record<string, unknown> | undefined {
  const a = isObject(inner) ? inner : undefined;
  const b = top ?? undefined;
  if (a && b) return { ...a, ...b };
  return b ?? a;
}
