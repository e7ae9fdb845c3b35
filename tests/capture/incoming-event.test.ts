import { describe, expect, test } from "bun:test";
import { exceedsDepth, validateIncomingEvent, type EventValidationCode } from "../../lib/events/incoming-event.ts";

const ok = { event: "$pageview", distinct_id: "u1" };

function failure(input: unknown): { code: EventValidationCode; field: string } {
  const r = validateIncomingEvent(input);
  if (r.ok) throw new Error(`expected a validation failure for ${JSON.stringify(input)}`);
  return { code: r.code, field: r.field };
}

function nested(depth: number): Record<string, unknown> {
  let o: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < depth; i++) o = { child: o };
  return o;
}

describe("valid events", () => {
  test("minimal event gets empty properties and its distinct_id", () => {
    const r = validateIncomingEvent(ok);
    expect(r.ok && r.event).toMatchObject({ event: "$pageview", distinct_id: "u1", properties: {} });
  });
  test("distinct_id from $distinct_id or properties.distinct_id; numbers become strings", () => {
    const a = validateIncomingEvent({ event: "e", $distinct_id: "x" });
    const b = validateIncomingEvent({ event: "e", properties: { distinct_id: "y" } });
    const c = validateIncomingEvent({ event: "e", distinct_id: 12345 });
    expect(a.ok && a.event.distinct_id).toBe("x");
    expect(b.ok && b.event.distinct_id).toBe("y");
    expect(c.ok && c.event.distinct_id).toBe("12345");
  });
  test("optional fields accepted, null treated as absent", () => {
    const r = validateIncomingEvent({
      ...ok,
      uuid: "01890a5d-ac96-774b-bcce-b302099a8057",
      timestamp: "2024-01-01T00:00:00Z",
      offset: 10,
      sent_at: 1714564800000,
      $set: { a: 1 },
      $set_once: { b: 2 },
      properties: null,
    });
    expect(r.ok).toBe(true);
  });
  test("an unparseable timestamp string is valid here (normalisation falls back to now)", () => {
    expect(validateIncomingEvent({ ...ok, timestamp: "yesterday-ish" }).ok).toBe(true);
  });
  test("exactly 200 characters and depth 20 are allowed", () => {
    expect(validateIncomingEvent({ event: "e".repeat(200), distinct_id: "d".repeat(200), properties: nested(20) }).ok).toBe(true);
  });
});

describe("each invalid input has its code and field", () => {
  const cases: [string, unknown, EventValidationCode, string][] = [
    ["not an object", "hello", "invalid_event_shape", ""],
    ["an array", [1], "invalid_event_shape", ""],
    ["null", null, "invalid_event_shape", ""],
    ["missing event", { distinct_id: "u" }, "missing_event_name", "event"],
    ["event not a string", { event: 5, distinct_id: "u" }, "invalid_event_name", "event"],
    ["empty event", { event: "", distinct_id: "u" }, "invalid_event_name", "event"],
    ["event too long", { event: "e".repeat(201), distinct_id: "u" }, "event_name_too_long", "event"],
    ["missing distinct_id", { event: "e" }, "missing_distinct_id", "distinct_id"],
    ["distinct_id object", { event: "e", distinct_id: { a: 1 } }, "invalid_distinct_id", "distinct_id"],
    ["distinct_id empty", { event: "e", distinct_id: "" }, "invalid_distinct_id", "distinct_id"],
    ["distinct_id NaN-ish", { event: "e", properties: { distinct_id: true } }, "invalid_distinct_id", "distinct_id"],
    ["distinct_id too long", { event: "e", distinct_id: "d".repeat(201) }, "distinct_id_too_long", "distinct_id"],
    ["properties array", { ...ok, properties: [1] }, "invalid_properties", "properties"],
    ["properties string", { ...ok, properties: "x" }, "invalid_properties", "properties"],
    ["properties too deep", { ...ok, properties: nested(21) }, "properties_too_deep", "properties"],
    ["$set array", { ...ok, $set: [] }, "invalid_set", "$set"],
    ["$set_once string", { ...ok, $set_once: "x" }, "invalid_set_once", "$set_once"],
    ["uuid not a uuid", { ...ok, uuid: "1234" }, "invalid_uuid", "uuid"],
    ["uuid number", { ...ok, uuid: 5 }, "invalid_uuid", "uuid"],
    ["timestamp object", { ...ok, timestamp: {} }, "invalid_timestamp", "timestamp"],
    ["offset negative", { ...ok, offset: -1 }, "invalid_offset", "offset"],
    ["offset string", { ...ok, offset: "10" }, "invalid_offset", "offset"],
    ["sent_at boolean", { ...ok, sent_at: true }, "invalid_sent_at", "sent_at"],
  ];
  for (const [name, input, code, field] of cases) {
    test(name, () => {
      expect(failure(input)).toEqual({ code, field });
    });
  }
  test("the detail names the field", () => {
    const r = validateIncomingEvent({ event: "e".repeat(201), distinct_id: "u" });
    expect(!r.ok && r.detail).toContain("event");
    expect(!r.ok && r.detail).toContain("200");
  });
});

describe("exceedsDepth", () => {
  test("counts objects and arrays, stops without recursion on hostile depth", () => {
    expect(exceedsDepth({ a: 1 }, 1)).toBe(false);
    expect(exceedsDepth({ a: [{ b: 1 }] }, 2)).toBe(true);
    expect(exceedsDepth({ a: [{ b: 1 }] }, 3)).toBe(false);
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(exceedsDepth({ deep }, 20)).toBe(true);
  });
});
