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

/** Never throws: undecodable bytes and schema violations come back as a reason for the DLQ. */
export function decodeCapturedEvent(value: Uint8Array | string): DecodeResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof value === "string" ? value : new TextDecoder("utf-8", { fatal: true }).decode(value));
  } catch (err) {
    return { ok: false, reason: "undecodable", detail: err instanceof Error ? err.message : String(err) };
  }
  const result = v.safeParse(CapturedEventSchema, parsed);
  if (result.success) return { ok: true, event: result.output };
  const issue = result.issues[0];
  const path = issue.path?.map((p) => String(p.key)).join(".") ?? "";
  return { ok: false, reason: "schema_violation", detail: path ? `${path}: ${issue.message}` : issue.message };
}
