/**
 * "Storable by construction": whatever capture acknowledges inserts cleanly into ClickHouse 18.16 (the server)
 * and current ClickHouse (chdb), through the consumer's own row encoding (apps/consumer/rows.ts). Lone surrogates
 * become U+FFFD; control characters and NUL are kept (JSON escapes them; both versions parse that); times outside
 * DateTime fall back to the time received with the client's text in `$timestamp_out_of_range`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import LZString from "lz-string";
import { wellFormedJsonText } from "../../apps/capture/well-formed-json.ts";
import { toRow } from "../../apps/consumer/rows.ts";
import { createClickHouse } from "../../lib/clickhouse/client.ts";
import { decodeCapturedEvent, type CapturedEvent } from "../../lib/events/captured-event.ts";
import { insertRows, openChdbEvents, type ChdbSession } from "../support/chdb.ts";
import { CH_DB, ch, CLICKHOUSE, uniqueTeamId } from "../support/stack.ts";
import { NOW, post, testApp, TOKEN } from "./support.ts";

const CONTROLS = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join("") + "\u007f";

describe("wellFormedJsonText", () => {
  const parsed = (text: string) => JSON.parse(wellFormedJsonText(text));
  test("lone surrogate escapes, high or low, anywhere: U+FFFD", () => {
    expect(parsed('{"a":"Hi \\ud83d"}')).toEqual({ a: "Hi \ufffd" });
    expect(parsed('{"a":"\\uDE00x"}')).toEqual({ a: "\ufffdx" });
    expect(parsed('{"\\ud800":["\\udbff\\u0041", {"k":"\\udc00\\ud800"}]}')).toEqual({ "\ufffd": ["\ufffdA", { k: "\ufffd\ufffd" }] });
  });
  test("valid pairs, escaped or raw, and other escapes are kept", () => {
    expect(parsed('{"a":"\\ud83d\\ude00 \\u00e9 \\n \\" \\\\"}')).toEqual({ a: "😀 é \n \" \\" });
    expect(parsed('{"a":"😀"}')).toEqual({ a: "😀" });
  });
  test("an escaped backslash before `ud83d` is text, not an escape", () => {
    expect(parsed('{"a":"\\\\ud83d"}')).toEqual({ a: "\\ud83d" });
    expect(parsed('{"a":"\\\\\\ud83d"}')).toEqual({ a: "\\\ufffd" });
  });
  test("raw lone surrogates in the text (lz-string output): U+FFFD", () => {
    expect(parsed('{"a":"x\ud83d"}')).toEqual({ a: "x\ufffd" });
  });
  test("a text without surrogates is returned as it is (no copy)", () => {
    const text = '{"a":"plain \\u00e9"}';
    expect(wellFormedJsonText(text)).toBe(text);
  });
});

/** Hostile but acceptable events, and what must be stored for each. */
const UUIDS = Array.from({ length: 10 }, () => crypto.randomUUID());
const hostile: { body: Record<string, unknown>; expect: (e: CapturedEvent) => void }[] = [
  {
    body: { event: "Hi \ud83d", distinct_id: "\udc00user", uuid: UUIDS[0], properties: { title: "Hi \ud83d", ["k\udbff"]: { deep: ["\ude00", { x: "\ud800" }] } } },
    expect: (e) => {
      expect(e.event).toBe("Hi \ufffd");
      expect(e.distinct_id).toBe("\ufffduser");
      expect(e.properties).toEqual({ title: "Hi \ufffd", "k\ufffd": { deep: ["\ufffd", { x: "\ufffd" }] } });
    },
  },
  {
    body: { event: "$identify", distinct_id: "d", uuid: UUIDS[1], $set: { name: "\ud83d" }, properties: { $set_once: { first: "\udfff" } } },
    expect: (e) => {
      expect(e.$set).toEqual({ name: "\ufffd" });
      expect(e.$set_once).toEqual({ first: "\ufffd" });
    },
  },
  {
    body: { event: `ctl${CONTROLS}`, distinct_id: `\u0000${CONTROLS}`, uuid: UUIDS[2], properties: { [`k${CONTROLS}`]: `v${CONTROLS}`, $ip: `\u0000` } },
    expect: (e) => {
      expect(e.event).toBe(`ctl${CONTROLS}`);
      expect(e.properties[`k${CONTROLS}`]).toBe(`v${CONTROLS}`);
    },
  },
  ...["1969-12-31T23:59:59Z", "-000001-01-01T00:00:00.000Z", "+275760-09-13T00:00:00.000Z", "2106-02-07T06:28:16Z"].map((timestamp, i) => ({
    body: { event: "old", distinct_id: "d", uuid: UUIDS[3 + i], timestamp },
    expect: (e: CapturedEvent) => {
      expect(e.timestamp).toBe(new Date(NOW).toISOString());
      expect(e.properties.$timestamp_out_of_range).toBe(timestamp);
    },
  })),
  {
    // Pre-1970 without a uuid answered 500 once: the generated UUIDv7 was asked for a negative time.
    body: { event: "moon landing", distinct_id: "d", timestamp: "1969-07-20T20:17:40Z" },
    expect: (e) => expect(e.properties.$timestamp_out_of_range).toBe("1969-07-20T20:17:40Z"),
  },
  {
    body: { event: "numbers", distinct_id: 1e21, uuid: UUIDS[7], properties: { big: 1e308, tiny: -5e-324, neg: -0, huge: 123456789012345678901234567890 } },
    expect: (e) => expect(e.distinct_id).toBe("1e+21"),
  },
];

let events: CapturedEvent[] = [];

beforeAll(async () => {
  const t = testApp();
  for (const h of hostile) {
    const res = await post(t, "/e", JSON.stringify({ api_key: TOKEN, ...h.body }));
    expect(res.status, await res.clone().text()).toBeLessThan(300);
  }
  // The same lone surrogate raw inside lz-string text, as an old posthog-js would send it.
  const raw = `{"api_key":"${TOKEN}","event":"lz","distinct_id":"d","uuid":"${UUIDS[8]}","properties":{"t":"x\ud83d"}}`;
  const res = await post(t, "/e/", `data=${encodeURIComponent(LZString.compressToBase64(raw))}&compression=lz64`, {
    "content-type": "application/x-www-form-urlencoded",
  });
  expect(res.status).toBeLessThan(300);
  events = t.sink.messages.map((m) => {
    const r = decodeCapturedEvent(m.value);
    if (!r.ok) throw new Error(r.detail);
    return r.event;
  });
});

describe("capture acknowledges hostile events and produces what the table can hold", () => {
  test("every field as expected; every string well-formed", () => {
    expect(events).toHaveLength(hostile.length + 1);
    hostile.forEach((h, i) => h.expect(events[i]!));
    expect(events.at(-1)!.properties).toEqual({ t: "x\ufffd" });
    for (const e of events) expect(JSON.stringify(e)).not.toMatch(/\\ud[89a-f]/i);
  });

  test("ClickHouse 18.16 inserts every row through the consumer's encoding, and reads the strings back", async () => {
    const teamId = uniqueTeamId();
    const client = createClickHouse({ url: CLICKHOUSE, database: CH_DB });
    const rows = events.map((e, i) => toRow({ ...e, team_id: teamId }, 0, BigInt(i), "2026-01-01 00:00:00"));
    await client.insert({ table: "events", values: rows, format: "JSONEachRow" });
    await client.close();
    expect(Number((await ch(`SELECT count() FROM events WHERE team_id = ${teamId}`))[0]![0])).toBe(events.length);
    const stored = await ch(`SELECT hex(event) FROM events WHERE team_id = ${teamId} AND uuid = '${UUIDS[0]}'`);
    expect(stored[0]![0]).toBe(Buffer.from("Hi \ufffd").toString("hex").toUpperCase());
    const old = await ch(`SELECT toUnixTimestamp(timestamp) FROM events WHERE team_id = ${teamId} AND event = 'old'`);
    expect(old.map(([s]) => Number(s) * 1000)).toEqual([NOW, NOW, NOW, NOW]);
  });

  describe("current ClickHouse (chdb)", () => {
    let session: ChdbSession | undefined;
    afterAll(() => session?.cleanup());
    test("inserts every row and reads the strings back", async () => {
      session = await openChdbEvents();
      insertRows(session, events.map((e, i) => toRow(e, 0, BigInt(i), "2026-01-01 00:00:00")));
      expect(session.query("SELECT count() FROM analytics.events", "TSV").trim()).toBe(String(events.length));
      expect(session.query(`SELECT hex(event) FROM analytics.events WHERE uuid = '${UUIDS[0]}'`, "TSV").trim()).toBe(
        Buffer.from("Hi \ufffd").toString("hex").toUpperCase(),
      );
    });
  });
});
