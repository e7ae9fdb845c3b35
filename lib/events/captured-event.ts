/**
 * The event as it travels on Kafka topic `events` (value, UTF-8 JSON; key = distinct_id). Capture writes it
 * after normalisation; the consumer decodes and checks it before inserting into ClickHouse. One schema on both
 * sides: a field added here is a field both ends know.
 */
import * as v from "valibot";

export const CAPTURED_EVENT_VERSION = 1;

const isoTimestamp = v.pipe(
  v.string(),
  v.check((s) => !Number.isNaN(Date.parse(s)), "expected an ISO-8601 timestamp"),
);

export const CapturedEventSchema = v.object({
  /** Format version, so a consumer can refuse what it does not understand (sent to the DLQ). */
  v: v.literal(CAPTURED_EVENT_VERSION),
  uuid: v.pipe(v.string(), v.uuid()),
  team_id: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(4_294_967_295)),
  event: v.pipe(v.string(), v.minLength(1), v.maxLength(200)),
  distinct_id: v.pipe(v.string(), v.minLength(1), v.maxLength(200)),
  /** Event time after clock-skew correction, UTC, ISO-8601 with milliseconds. */
  timestamp: isoTimestamp,
  properties: v.record(v.string(), v.unknown()),
  /** Client address, or "" when IP capture is off. */
  ip: v.string(),
  received_at: isoTimestamp,
  $set: v.optional(v.record(v.string(), v.unknown())),
  $set_once: v.optional(v.record(v.string(), v.unknown())),
});

export type CapturedEvent = v.InferOutput<typeof CapturedEventSchema>;

export function encodeCapturedEvent(e: CapturedEvent): string {
  return JSON.stringify(e);
}

export type DecodeResult = { ok: true; event: CapturedEvent } | { ok: false; reason: string; detail: string };

const utf8 = new TextDecoder("utf-8", { fatal: true });
// The same pattern valibot's v.uuid() checks.
const UUID = /^[\da-f]{8}(?:-[\da-f]{4}){3}-[\da-f]{12}$/iu;

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const isName = (x: unknown): x is string => typeof x === "string" && x.length >= 1 && x.length <= 200;
const isTime = (x: unknown): x is string => typeof x === "string" && !Number.isNaN(Date.parse(x));

/**
 * The schema's rules written out by hand: the consumer decodes every event, and valibot's safeParse measured
 * 4.7 us per event against 0.24 us for this. Anything it rejects goes through valibot, which names the reason.
 */
function isCapturedEvent(o: unknown): o is CapturedEvent {
  if (!isRecord(o)) return false;
  const teamId = o.team_id;
  return (
    o.v === CAPTURED_EVENT_VERSION &&
    typeof o.uuid === "string" &&
    UUID.test(o.uuid) &&
    typeof teamId === "number" &&
    Number.isInteger(teamId) &&
    teamId >= 1 &&
    teamId <= 4_294_967_295 &&
    isName(o.event) &&
    isName(o.distinct_id) &&
    isTime(o.timestamp) &&
    isRecord(o.properties) &&
    typeof o.ip === "string" &&
    isTime(o.received_at) &&
    (o.$set === undefined || isRecord(o.$set)) &&
    (o.$set_once === undefined || isRecord(o.$set_once))
  );
}

/** Never throws: undecodable bytes and schema violations come back as a reason for the DLQ. */
export function decodeCapturedEvent(value: Uint8Array | string): DecodeResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof value === "string" ? value : utf8.decode(value));
  } catch (err) {
    return { ok: false, reason: "undecodable", detail: err instanceof Error ? err.message : String(err) };
  }
  if (isCapturedEvent(parsed)) return { ok: true, event: parsed };
  const result = v.safeParse(CapturedEventSchema, parsed);
  if (result.success) return { ok: true, event: result.output };
  const issue = result.issues[0];
  const path = issue.path?.map((p) => String(p.key)).join(".") ?? "";
  return { ok: false, reason: "schema_violation", detail: path ? `${path}: ${issue.message}` : issue.message };
}
