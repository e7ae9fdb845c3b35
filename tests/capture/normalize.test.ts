import { describe, expect, test } from "bun:test";
import { decodeCapturedEvent, encodeCapturedEvent } from "../../lib/events/captured-event.ts";
import { validateIncomingEvent, type IncomingEvent } from "../../lib/events/incoming-event.ts";
import { normalizeEvent, type RequestFacts } from "../../lib/events/normalize.ts";

const NOW = Date.parse("2024-05-01T12:00:00.000Z");
const facts: RequestFacts = {
  nowMs: NOW,
  skewMs: 0,
  teamId: 42,
  ip: "203.0.113.9",
  captureIp: true,
  newUuid: (ms) => Bun.randomUUIDv7("hex", ms),
};

function incoming(raw: Record<string, unknown>): IncomingEvent {
  const r = validateIncomingEvent(raw);
  if (!r.ok) throw new Error(r.detail);
  return r.event;
}

describe("normalizeEvent", () => {
  test("produces a CapturedEvent the consumer decodes", () => {
    const out = normalizeEvent(incoming({ event: "signup", distinct_id: 99, properties: { plan: "pro" } }), facts);
    expect(out).toMatchObject({ v: 1, team_id: 42, event: "signup", distinct_id: "99", ip: "203.0.113.9", properties: { plan: "pro" } });
    expect(out.received_at).toBe("2024-05-01T12:00:00.000Z");
    expect(out.timestamp).toBe("2024-05-01T12:00:00.000Z");
    const decoded = decodeCapturedEvent(encodeCapturedEvent(out));
    expect(decoded.ok && decoded.event).toEqual(out);
  });

  test("uuid kept when given, generated as UUIDv7 at the event time otherwise", () => {
    const given = "01890a5d-ac96-774b-bcce-b302099a8057";
    expect(normalizeEvent(incoming({ event: "e", distinct_id: "d", uuid: given }), facts).uuid).toBe(given);
    const ts = Date.parse("2024-04-30T08:00:00.000Z");
    const generated = normalizeEvent(incoming({ event: "e", distinct_id: "d", timestamp: new Date(ts).toISOString() }), facts).uuid;
    expect(generated).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(parseInt(generated.replace(/-/g, "").slice(0, 12), 16)).toBe(ts);
  });

  test("skew applied; marker properties for unparseable and clamped timestamps", () => {
    const skewed = normalizeEvent(incoming({ event: "e", distinct_id: "d", timestamp: "2024-05-01T11:00:00.000Z" }), {
      ...facts,
      skewMs: 60_000,
    });
    expect(skewed.timestamp).toBe("2024-05-01T11:01:00.000Z");
    const bad = normalizeEvent(incoming({ event: "e", distinct_id: "d", timestamp: "soon" }), facts);
    expect(bad.timestamp).toBe("2024-05-01T12:00:00.000Z");
    expect(bad.properties.$timestamp_unparseable).toBe("soon");
    const future = normalizeEvent(incoming({ event: "e", distinct_id: "d", timestamp: "2030-01-01T00:00:00Z" }), facts);
    expect(future.timestamp).toBe("2024-05-01T12:00:00.000Z");
    expect(future.properties.$timestamp_clamped).toBe("2030-01-01T00:00:00Z");
  });

  test("a time DateTime cannot hold (pre-1970, negative year): the time received, the client's text kept; no uuid needed", () => {
    for (const timestamp of ["1969-07-20T20:17:40Z", "-000001-01-01T00:00:00.000Z", -86_400_000]) {
      const out = normalizeEvent(incoming({ event: "e", distinct_id: "d", timestamp }), facts);
      expect(out.timestamp).toBe("2024-05-01T12:00:00.000Z");
      expect(out.properties.$timestamp_out_of_range).toBe(String(timestamp));
      // The generated UUIDv7 carries the time actually used.
      expect(parseInt(out.uuid.replace(/-/g, "").slice(0, 12), 16)).toBe(NOW);
    }
    // Epoch-ms numbers with a fraction: no uuid sent, so one is made from whole milliseconds.
    for (const timestamp of [1714564800000.5, 6.76e-275]) {
      expect(() => normalizeEvent(incoming({ event: "e", distinct_id: "d", timestamp }), facts)).not.toThrow();
    }
    const offset = normalizeEvent(incoming({ event: "e", distinct_id: "d", offset: NOW + 5, timestamp: "2024-05-01T11:00:00Z" }), facts);
    expect(offset.properties.$timestamp_out_of_range).toBe(String(NOW + 5));
  });

  test("NUL in what persons are made of (PostgreSQL cannot hold it) becomes U+FFFD; elsewhere it is kept", () => {
    const out = normalizeEvent(
      incoming({
        event: "$identify\u0000",
        distinct_id: "a\u0000b",
        $set: { "k\u0000": ["v\u0000", { __proto__x: "\u0000" }], plain: 1 },
        properties: { $anon_distinct_id: "anon\u0000", $unset: ["x\u0000"], alias: 5, other: "o\u0000", $set_once: { first: "\u0000" } },
      }),
      facts,
    );
    expect(out.event).toBe("$identify\u0000");
    expect(out.distinct_id).toBe("a\ufffdb");
    expect(out.$set).toEqual({ "k\ufffd": ["v\ufffd", { __proto__x: "\ufffd" }], plain: 1 });
    expect(out.$set_once).toEqual({ first: "\ufffd" });
    expect(out.properties).toMatchObject({ $anon_distinct_id: "anon\ufffd", $unset: ["x\ufffd"], alias: 5, other: "o\u0000" });
    const proto = normalizeEvent(incoming({ event: "e", distinct_id: "d", $set: JSON.parse('{"__proto__": {"x": "\\u0000"}}') }), facts);
    expect(Object.keys(proto.$set!)).toEqual(["__proto__"]);
    expect(JSON.stringify(proto.$set)).toBe('{"__proto__":{"x":"\ufffd"}}');
  });

  test("$set and $set_once deeper than 20 levels: 400 properties_too_deep naming the field", () => {
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 25; i++) deep = { d: deep };
    for (const field of ["$set", "$set_once"]) {
      const r = validateIncomingEvent({ event: "e", distinct_id: "d", [field]: deep });
      expect(r.ok ? null : { code: r.code, field: r.field }).toEqual({ code: "properties_too_deep", field });
    }
  });

  test("ip: request address, the event's own $ip when given, empty when capture is off", () => {
    expect(normalizeEvent(incoming({ event: "e", distinct_id: "d", properties: { $ip: "198.51.100.1" } }), facts).ip).toBe("198.51.100.1");
    expect(normalizeEvent(incoming({ event: "e", distinct_id: "d", properties: { $ip: "198.51.100.1" } }), { ...facts, ip: "", captureIp: false }).ip).toBe("");
  });

  test("$set / $set_once from the top level and from properties (the top level wins)", () => {
    const out = normalizeEvent(
      incoming({ event: "$identify", distinct_id: "d", $set: { a: 1, b: 1 }, properties: { $set: { b: 2, c: 2 }, $set_once: { first: true } } }),
      facts,
    );
    expect(out.$set).toEqual({ a: 1, b: 1, c: 2 });
    expect(out.$set_once).toEqual({ first: true });
    expect("$set" in normalizeEvent(incoming({ event: "e", distinct_id: "d" }), facts)).toBe(false);
  });

  test("pure: the same input and facts give the same output", () => {
    const e = incoming({ event: "e", distinct_id: "d", uuid: "01890a5d-ac96-774b-bcce-b302099a8057", timestamp: "2024-05-01T10:00:00Z" });
    expect(normalizeEvent(e, facts)).toEqual(normalizeEvent(e, facts));
  });
});
