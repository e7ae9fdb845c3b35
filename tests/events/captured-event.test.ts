/** The consumer's hand-written fast check accepts exactly what the valibot schema accepts. */
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { CapturedEventSchema, decodeCapturedEvent, encodeCapturedEvent } from "../../lib/events/captured-event.ts";

const base = {
  v: 1,
  uuid: "0190f5b4-8a5e-7cc3-9d1e-0123456789ab",
  team_id: 42,
  event: "$pageview",
  distinct_id: "user-1",
  timestamp: "2026-11-27T10:00:00.123Z",
  properties: { a: 1, nested: { b: [1, 2] } },
  ip: "127.0.0.1",
  received_at: "2026-11-27T10:00:01.000Z",
};

const variants: [string, Record<string, unknown>][] = [
  ["valid", {}],
  ["with $set and $set_once", { $set: { plan: "pro" }, $set_once: { first: "x" } }],
  ["format version 2", { v: 2 }],
  ["uuid not a uuid", { uuid: "nope" }],
  ["uuid upper case", { uuid: base.uuid.toUpperCase() }],
  ["team 0", { team_id: 0 }],
  ["team fractional", { team_id: 1.5 }],
  ["team as text", { team_id: "42" }],
  ["team beyond UInt32", { team_id: 4_294_967_296 }],
  ["empty event", { event: "" }],
  ["event of 201 chars", { event: "e".repeat(201) }],
  ["event of 200 chars", { event: "e".repeat(200) }],
  ["distinct_id number", { distinct_id: 7 }],
  ["timestamp garbage", { timestamp: "yesterday-ish" }],
  ["timestamp without zone", { timestamp: "2026-11-27T10:00:00" }],
  ["properties array", { properties: [1] }],
  ["properties null", { properties: null }],
  ["ip missing", { ip: undefined }],
  ["received_at number", { received_at: 5 }],
  ["$set array", { $set: [] }],
];

describe("decodeCapturedEvent", () => {
  for (const [name, change] of variants) {
    test(`agrees with the valibot schema: ${name}`, () => {
      const value = { ...base, ...change };
      const expected = v.safeParse(CapturedEventSchema, value).success;
      expect(decodeCapturedEvent(JSON.stringify(value)).ok).toBe(expected);
      expect(decodeCapturedEvent(new TextEncoder().encode(JSON.stringify(value))).ok).toBe(expected);
    });
  }

  test("round trip through the encoder", () => {
    const r = decodeCapturedEvent(encodeCapturedEvent(base as never));
    expect(r).toEqual({ ok: true, event: base as never });
  });

  test("invalid UTF-8 and broken JSON are undecodable, with a reason", () => {
    expect(decodeCapturedEvent(new Uint8Array([0x7b, 0xff, 0x7d]))).toMatchObject({ ok: false, reason: "undecodable" });
    expect(decodeCapturedEvent("{")).toMatchObject({ ok: false, reason: "undecodable" });
    expect(decodeCapturedEvent("[]")).toMatchObject({ ok: false, reason: "schema_violation" });
  });
});
