import { describe, expect, test } from "bun:test";
import { Batch } from "../../apps/consumer/batch.ts";
import { toRow } from "../../apps/consumer/rows.ts";
import { clickhouseDateTime, propertyText as propertyValue } from "../../lib/events/event-row.ts";
import { decodeCapturedEvent } from "../../lib/events/captured-event.ts";

describe("rows", () => {
  test("DateTime text is UTC seconds", () => {
    expect(clickhouseDateTime("2026-03-29T01:30:15.987+02:00")).toBe("2026-03-28 23:30:15");
  });

  test("property values: strings as is, everything else as its JSON text", () => {
    expect(propertyValue("a'b")).toBe("a'b");
    expect(propertyValue(42.5)).toBe("42.5");
    expect(propertyValue(true)).toBe("true");
    expect(propertyValue(null)).toBe("null");
    expect(propertyValue({ a: [1] })).toBe('{"a":[1]}');
  });

  test("an event becomes a row with parallel key/value arrays and its Kafka position", () => {
    const row = toRow(
      {
        v: 1,
        uuid: "0190f5b4-8a5e-7cc3-9d1e-0123456789ab",
        team_id: 7,
        event: "$pageview",
        distinct_id: "u1",
        timestamp: "2026-11-27T10:00:00.123Z",
        properties: { path: "/", n: 3, ok: false },
        ip: "10.0.0.1",
        received_at: "2026-11-27T10:00:01.000Z",
      },
      5,
      123n,
      "2026-11-27 10:00:02",
    );
    expect(row).toMatchObject({
      team_id: 7,
      timestamp: "2026-11-27 10:00:00",
      msec: 123,
      prop_keys: ["path", "n", "ok"],
      prop_values: ["/", "3", "false"],
      properties: '{"path":"/","n":3,"ok":false}',
      kafka_partition: 5,
      kafka_offset: 123,
    });
  });

  test("poison values are classified, never thrown", () => {
    expect(decodeCapturedEvent(new Uint8Array([0xff, 0xfe]))).toMatchObject({ ok: false, reason: "undecodable" });
    expect(decodeCapturedEvent("{}")).toMatchObject({ ok: false, reason: "schema_violation" });
    expect(decodeCapturedEvent(JSON.stringify({ v: 2 }))).toMatchObject({ ok: false, reason: "schema_violation" });
  });
});

describe("batch", () => {
  const msg = (partition: number, offset: bigint) => ({ topic: "events", partition, offset, key: null, value: null, timestamp: 0 });
  const limits = { maxRows: 3, maxBytes: 1000, lingerMs: 100 };

  test("commits the next offset per partition, DLQ'd messages included", () => {
    let now = 0;
    const b = new Batch(() => now);
    expect(b.empty).toBe(true);
    b.add(msg(1, 10n), null, 5);
    b.add(msg(1, 12n), null, 5);
    b.add(msg(2, 3n), null, 5);
    expect(b.offsets()).toEqual([
      { topic: "events", partition: 1, offset: 13n },
      { topic: "events", partition: 2, offset: 4n },
    ]);
    expect(b.due(limits)).toBe(false);
    now = 100;
    expect(b.due(limits)).toBe(true);
  });

  test("is due when rows or bytes reach their limit", () => {
    const b = new Batch(() => 0);
    const row = toRow(
      { v: 1, uuid: crypto.randomUUID(), team_id: 1, event: "e", distinct_id: "d", timestamp: new Date().toISOString(), properties: {}, ip: "", received_at: new Date().toISOString() },
      0,
      0n,
      "2026-01-01 00:00:00",
    );
    b.add(msg(0, 0n), row, 10);
    b.add(msg(0, 1n), row, 10);
    expect(b.due(limits)).toBe(false);
    b.add(msg(0, 2n), row, 10);
    expect(b.due(limits)).toBe(true);
    const big = new Batch(() => 0);
    big.add(msg(0, 0n), row, 1000);
    expect(big.full(limits)).toBe(true);
  });
});
