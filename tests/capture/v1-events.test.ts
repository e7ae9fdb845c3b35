/**
 * POST /i/v1/analytics/events (posthog-python capture_mode="v1") in process: headers, per-event results,
 * partial drops, retry on a broker failure, encodings. The real SDK runs against it in tests/sdk/.
 */
import { describe, expect, test } from "bun:test";
import { deflateSync, gzipSync } from "node:zlib";
import { EventSinkError } from "../../apps/capture/event-sink.ts";
import { decodeCapturedEvent, type CapturedEvent } from "../../lib/events/captured-event.ts";
import { counter, NOW, post, testApp, TOKEN } from "./support.ts";

const PATH = "/i/v1/analytics/events";
const CLIENT_CLOCK = new Date(NOW - 60_000).toISOString(); // the client's clock runs a minute behind

function headers(overrides: Record<string, string | null> = {}): Record<string, string> {
  const h: Record<string, string | null> = {
    authorization: `Bearer ${TOKEN}`,
    "content-type": "application/json",
    "user-agent": "posthog-python/7.91.1",
    "posthog-sdk-info": "posthog-python/7.91.1",
    "posthog-attempt": "1",
    "posthog-request-id": crypto.randomUUID(),
    "posthog-request-timestamp": CLIENT_CLOCK,
    ...overrides,
  };
  return Object.fromEntries(Object.entries(h).filter((e): e is [string, string] => e[1] !== null));
}

function v1Event(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    event: "signup",
    uuid: crypto.randomUUID(),
    distinct_id: "user-1",
    timestamp: new Date(NOW - 65_000).toISOString(),
    options: {},
    properties: { plan: "pro" },
    ...overrides,
  };
}

const body = (batch: unknown[], extra: Record<string, unknown> = {}) => JSON.stringify({ created_at: CLIENT_CLOCK, batch, ...extra });
const json = async (res: Response) => (await res.json()) as Record<string, any>;

function captured(value: string): CapturedEvent {
  const r = decodeCapturedEvent(value);
  if (!r.ok) throw new Error(r.detail);
  return r.event;
}

describe("accepted", () => {
  test("every event stored and answered ok by uuid; $lib from PostHog-Sdk-Info; options and session become properties", async () => {
    const t = testApp();
    const events = [
      v1Event({ session_id: "s-1", window_id: "w-1", options: { process_person_profile: false, cookieless_mode: "yes" } }),
      v1Event({ distinct_id: "user-2", properties: { $set: { email: "a@b.c" } } }),
      v1Event({ event: "$pageview", properties: null }),
    ];
    const res = await post(t, PATH, body(events), headers());
    expect(res.status).toBe(200);
    expect(res.headers.get("retry-after")).toBeNull();
    expect(await json(res)).toEqual({ results: Object.fromEntries(events.map((e) => [e.uuid, { result: "ok" }])) });
    const stored = t.sink.messages.map((m) => captured(m.value));
    expect(stored.map((e) => e.uuid)).toEqual(events.map((e) => e.uuid as string));
    expect(t.sink.messages.map((m) => m.key)).toEqual(["user-1", "user-2", "user-1"]);
    expect(stored[0]!.properties).toMatchObject({
      plan: "pro",
      $session_id: "s-1",
      $window_id: "w-1",
      $process_person_profile: false,
      $lib: "posthog-python",
      $lib_version: "7.91.1",
    });
    // A wrongly typed option is left out rather than stored.
    expect(stored[0]!.properties.$cookieless_mode).toBeUndefined();
    expect(stored[0]!.team_id).toBe(7);
    expect(await counter(t.registry, "capture_requests_total", { route: PATH, status: "200" })).toBe(1);
  });

  test("clock skew from PostHog-Request-Timestamp, unless the event says disable_skew_adjustment", async () => {
    const t = testApp();
    const at = new Date(NOW - 65_000).toISOString();
    const res = await post(t, PATH, body([v1Event({ timestamp: at }), v1Event({ timestamp: at, options: { disable_skew_adjustment: true } })]), headers());
    expect(res.status).toBe(200);
    const [skewed, asIs] = t.sink.messages.map((m) => captured(m.value));
    expect(skewed!.timestamp).toBe(new Date(NOW - 5_000).toISOString());
    expect(asIs!.timestamp).toBe(at);
  });

  test("Content-Encoding gzip, deflate (zlib) and zstd", async () => {
    const t = testApp();
    for (const [encoding, encode] of [
      ["gzip", (b: string) => gzipSync(b)],
      ["deflate", (b: string) => deflateSync(b)],
      ["zstd", (b: string) => Bun.zstdCompressSync(b)],
    ] as const) {
      const res = await post(t, PATH, encode(body([v1Event()])), headers({ "content-encoding": encoding }));
      expect(res.status).toBe(200);
    }
    expect(t.sink.messages).toHaveLength(3);
  });

  test("compression bombs (zstd, gzip, deflate): 413 payload_too_large, nothing stored", async () => {
    const t = testApp();
    // 100 MB of zeros per frame: zstd (20 concatenated frames, 2 GB, about 60 KB on the wire), gzip and deflate.
    const zeros = new Uint8Array(100_000_000);
    const bombs = [
      ["zstd", Buffer.concat(Array.from({ length: 20 }, () => Bun.zstdCompressSync(zeros)))],
      ["gzip", gzipSync(zeros)],
      ["deflate", deflateSync(zeros)],
    ] as const;
    for (const [encoding, bomb] of bombs) {
      const res = await post(t, PATH, bomb, headers({ "content-encoding": encoding }));
      expect(res.status).toBe(413);
      expect((await json(res)).error).toBe("payload_too_large");
    }
    expect(t.sink.messages).toHaveLength(0);
  });
});

describe("per-event drops: the rest is stored", () => {
  test("invalid events answered drop with their code; valid ones ok", async () => {
    const t = testApp();
    const good = v1Event();
    const bad = [
      v1Event({ distinct_id: "" }),
      v1Event({ timestamp: "yesterday" }),
      v1Event({ event: "" }),
      v1Event({ event: "x".repeat(201) }),
      v1Event({ properties: [1, 2] }),
      v1Event({ event: "$performance_event" }),
    ];
    const res = await post(t, PATH, body([good, ...bad]), headers());
    expect(res.status).toBe(200);
    const { results } = await json(res);
    expect(results[good.uuid as string]).toEqual({ result: "ok" });
    expect(bad.map((e) => results[e.uuid as string])).toEqual([
      { result: "drop", details: "missing_distinct_id" },
      { result: "drop", details: "invalid_event_timestamp" },
      { result: "drop", details: "invalid_event_name" },
      { result: "drop", details: "event_name_too_long" },
      { result: "drop", details: "malformed_event_properties" },
      { result: "drop", details: "dropped_performance_event" },
    ]);
    expect(t.sink.messages).toHaveLength(1);
    expect(await counter(t.registry, "capture_events_dropped_total", { reason: "invalid_event_timestamp" })).toBe(1);
  });

  test("an event over the per-event cap is dropped alone", async () => {
    const t = testApp({ limits: { maxEventsPerRequest: 100, maxEventBytes: 2048 } });
    const big = v1Event({ properties: { pad: "x".repeat(4000) } });
    const small = [v1Event(), v1Event({ options: { disable_skew_adjustment: true } })];
    const { results } = await json(await post(t, PATH, body([small[0], big, small[1]]), headers()));
    expect(results[big.uuid as string]).toEqual({ result: "drop", details: "event_too_large" });
    expect(small.map((e) => results[e.uuid as string])).toEqual([{ result: "ok" }, { result: "ok" }]);
    expect(t.sink.messages).toHaveLength(2);
  });
});

describe("not stored now: retry", () => {
  test("Kafka refuses: every event answered retry (not_persisted) with Retry-After; dropped ones stay dropped", async () => {
    const t = testApp();
    t.sink.failWith = new EventSinkError("retriable", "broker down");
    const ok = [v1Event(), v1Event()];
    const invalid = v1Event({ distinct_id: "" });
    const res = await post(t, PATH, body([...ok, invalid]), headers());
    expect(res.status).toBe(200);
    expect(res.headers.get("retry-after")).toBe("5");
    const { results } = await json(res);
    expect(ok.map((e) => results[e.uuid as string])).toEqual([
      { result: "retry", details: "not_persisted" },
      { result: "retry", details: "not_persisted" },
    ]);
    expect(results[invalid.uuid as string].result).toBe("drop");
    expect(t.sink.messages).toHaveLength(0);
    // The SDK re-sends only the retry events, same uuids, attempt 2.
    t.sink.failWith = null;
    const again = await post(t, PATH, body(ok), headers({ "posthog-attempt": "2" }));
    expect((await json(again)).results).toEqual(Object.fromEntries(ok.map((e) => [e.uuid, { result: "ok" }])));
    expect(t.sink.messages.map((m) => captured(m.value).uuid)).toEqual(ok.map((e) => e.uuid as string));
  });
});

describe("whole-request errors", () => {
  const cases: [string, () => [string | Uint8Array, Record<string, string>], number, string][] = [
    ["no Authorization", () => [body([v1Event()]), headers({ authorization: null })], 401, "missing_authorization"],
    ["unknown token", () => [body([v1Event()]), headers({ authorization: "Bearer phc_unknown" })], 401, "invalid_api_token"],
    ["not Bearer", () => [body([v1Event()]), headers({ authorization: `Basic ${TOKEN}` })], 400, "invalid_header_value"],
    ["missing PostHog-Request-Id", () => [body([v1Event()]), headers({ "posthog-request-id": null })], 400, "missing_required_headers"],
    ["attempt 0", () => [body([v1Event()]), headers({ "posthog-attempt": "0" })], 400, "invalid_header_value"],
    ["text/plain", () => [body([v1Event()]), headers({ "content-type": "text/plain" })], 415, "unsupported_content_type"],
    ["lz4", () => [body([v1Event()]), headers({ "content-encoding": "lz4" })], 415, "unsupported_encoding"],
    ["not JSON", () => ["{nope", headers()], 400, "request_parsing_error"],
    ["bad gzip", () => ["plain", headers({ "content-encoding": "gzip" })], 400, "request_decoding_error"],
    ["empty body", () => ["", headers()], 400, "empty_body"],
    ["empty batch", () => [body([]), headers()], 400, "empty_batch"],
    ["bad created_at", () => [body([v1Event()], { created_at: "now" }), headers()], 400, "invalid_batch"],
    ["event without uuid", () => [body([v1Event({ uuid: undefined })]), headers()], 400, "missing_event_uuid"],
  ];
  for (const [name, make, status, tag] of cases) {
    test(`${name}: ${status} ${tag}, nothing stored`, async () => {
      const t = testApp();
      const [b, h] = make();
      const res = await post(t, PATH, b, h);
      expect(res.status).toBe(status);
      expect(await json(res)).toMatchObject({ error: tag, error_description: expect.any(String) });
      expect(t.sink.messages).toHaveLength(0);
    });
  }

  test("duplicate uuid in one batch: 400, nothing stored", async () => {
    const t = testApp();
    const e = v1Event();
    const res = await post(t, PATH, body([e, { ...e }]), headers());
    expect(res.status).toBe(400);
    expect(await json(res)).toMatchObject({ error: "duplicate_event_uuid" });
  });

  test("project stores down and token not cached: 503 with Retry-After (the SDK retries)", async () => {
    const t = testApp();
    t.source.down = true;
    const res = await post(t, PATH, body([v1Event()]), headers());
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
  });

  test("shutting down: 503", async () => {
    const t = testApp({ accepting: () => false });
    expect((await post(t, PATH, body([v1Event()]), headers())).status).toBe(503);
  });
});
