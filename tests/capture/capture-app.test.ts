/** HTTP-level behaviour of apps/capture, in process (app.request), over the in-memory sink. */
import { describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import LZString from "lz-string";
import { EventSinkError } from "../../apps/capture/event-sink.ts";
import { decodeCapturedEvent, type CapturedEvent } from "../../lib/events/captured-event.ts";
import { counter, event, NOW, OTHER_TOKEN, post, postJson, testApp, TOKEN } from "./support.ts";

function captured(value: string): CapturedEvent {
  const r = decodeCapturedEvent(value);
  if (!r.ok) throw new Error(r.detail);
  return r.event;
}

describe("paths and body shapes", () => {
  const paths = ["/capture", "/capture/", "/e", "/e/", "/i/v0/e", "/i/v0/e/", "/track", "/track/", "/engage", "/engage/", "/batch", "/batch/"];
  for (const path of paths) {
    test(`POST ${path}: one event -> 200 {"status":1}, on topic events keyed by distinct_id`, async () => {
      const t = testApp();
      const res = await postJson(t, path, event({ api_key: TOKEN, distinct_id: "alice" }));
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 1 });
      expect(t.sink.messages).toHaveLength(1);
      const m = t.sink.messages[0]!;
      expect(m.topic).toBe("events");
      expect(m.key).toBe("alice");
      expect(captured(m.value)).toMatchObject({ team_id: 7, event: "$pageview", distinct_id: "alice" });
    });
  }

  test('our native POST /v1/capture and /v1/batch answer 202 {"status":1} (and ignore beacon=1)', async () => {
    const t = testApp();
    const one = await postJson(t, "/v1/capture?beacon=1", event({ api_key: TOKEN }));
    expect(one.status).toBe(202);
    expect(await one.json()).toEqual({ status: 1 });
    const many = await postJson(t, "/v1/batch", { api_key: TOKEN, batch: [event(), event({ distinct_id: "bob" })] });
    expect(many.status).toBe(202);
    expect(t.sink.messages).toHaveLength(3);
    expect(await counter(t.registry, "capture_requests_total", { route: "/v1/batch", status: "202" })).toBe(1);
  });

  test("batch envelope {api_key, batch, sent_at}", async () => {
    const t = testApp();
    const res = await postJson(t, "/batch", { api_key: TOKEN, batch: [event(), event({ distinct_id: "bob" })], sent_at: new Date(NOW).toISOString() });
    expect(res.status).toBe(200);
    expect(t.sink.messages.map((m) => m.key)).toEqual(["user-1", "bob"]);
  });

  test("envelope with `token`; bare array with the token in each event or in properties.token", async () => {
    const t = testApp();
    expect((await postJson(t, "/batch", { token: TOKEN, batch: [event()] })).status).toBe(200);
    expect((await postJson(t, "/batch", [event({ token: TOKEN }), event({ api_key: TOKEN })])).status).toBe(200);
    expect((await postJson(t, "/e", event({ properties: { token: TOKEN } }))).status).toBe(200);
    expect((await postJson(t, "/e", event({ $token: TOKEN }))).status).toBe(200);
    expect(t.sink.messages).toHaveLength(5);
  });

  test("distinct_id from $distinct_id or properties, numbers as strings", async () => {
    const t = testApp();
    const res = await postJson(t, "/batch", {
      api_key: TOKEN,
      batch: [{ event: "a", $distinct_id: "x" }, { event: "b", properties: { distinct_id: "y" } }, { event: "c", distinct_id: 42 }],
    });
    expect(res.status).toBe(200);
    expect(t.sink.messages.map((m) => m.key)).toEqual(["x", "y", "42"]);
  });

  test("unknown path -> 404, nothing produced", async () => {
    const t = testApp();
    expect((await postJson(t, "/nope", event({ api_key: TOKEN }))).status).toBe(404);
    expect(t.sink.messages).toHaveLength(0);
  });
});

describe("encodings over HTTP", () => {
  const body = JSON.stringify({ api_key: TOKEN, batch: [event()] });

  test("Content-Encoding: gzip (posthog-node)", async () => {
    const t = testApp();
    const res = await post(t, "/batch/", gzipSync(body), { "content-type": "application/json", "content-encoding": "gzip" });
    expect(res.status).toBe(200);
  });
  test("?compression=gzip-js with text/plain (posthog-js)", async () => {
    const t = testApp();
    const res = await post(t, "/e/?compression=gzip-js&ver=1.200.0&_=" + NOW, gzipSync(body), { "content-type": "text/plain" });
    expect(res.status).toBe(200);
  });
  test("lz64 form (older posthog-js): data=<lz-string base64>&compression=lz64", async () => {
    const t = testApp();
    const form = `data=${encodeURIComponent(LZString.compressToBase64(body))}&compression=lz64`;
    const res = await post(t, "/e/", form, { "content-type": "application/x-www-form-urlencoded" });
    expect(res.status).toBe(200);
  });
  test("base64 form", async () => {
    const t = testApp();
    const res = await post(t, "/e/", `data=${encodeURIComponent(Buffer.from(body).toString("base64"))}`, {
      "content-type": "application/x-www-form-urlencoded",
    });
    expect(res.status).toBe(200);
  });
  test("GET ?data= beacon: 200, or 204 with beacon=1", async () => {
    const t = testApp();
    const data = encodeURIComponent(Buffer.from(body).toString("base64"));
    expect((await t.app.request(`/e/?data=${data}`)).status).toBe(200);
    const beacon = await t.app.request(`/e/?data=${data}&beacon=1`);
    expect(beacon.status).toBe(204);
    expect(await beacon.text()).toBe("");
    expect(t.sink.messages).toHaveLength(2);
  });
  test("bad bodies: 400 with a code, nothing produced", async () => {
    const t = testApp();
    for (const [b, code] of [
      ["{not json", "invalid_json"],
      ["hello?", "invalid_payload"],
      ["42", "invalid_payload"],
      ['{"batch": 5}', "invalid_payload"],
    ] as const) {
      const res = await post(t, "/e", b);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ type: "validation_error", code });
    }
    expect(t.sink.messages).toHaveLength(0);
  });
});

describe("validation", () => {
  test("one invalid event rejects the whole batch: 400 naming code, field and index; nothing produced", async () => {
    const t = testApp();
    const res = await postJson(t, "/batch", { api_key: TOKEN, batch: [event(), event(), event({ event: 5 })] });
    expect(res.status).toBe(400);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ type: "validation_error", code: "invalid_event_name", field: "event", index: 2 });
    expect(String(body.detail)).toContain("event");
    expect(t.sink.messages).toHaveLength(0);
    expect(await counter(t.registry, "capture_events_dropped_total", { reason: "invalid_event_name" })).toBe(3);
  });
  test("a single invalid event has no index", async () => {
    const t = testApp();
    const res = await postJson(t, "/e", { api_key: TOKEN, event: "x" });
    expect(await res.json()).toEqual({
      type: "validation_error",
      code: "missing_distinct_id",
      field: "distinct_id",
      detail: "distinct_id: `distinct_id` is required (or `$distinct_id`, or `properties.distinct_id`)",
    });
  });
  test("event and distinct_id over 200 characters, properties deeper than 20", async () => {
    const t = testApp();
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 21; i++) deep = { d: deep };
    const cases = [
      [event({ event: "e".repeat(201) }), "event_name_too_long"],
      [event({ distinct_id: "d".repeat(201) }), "distinct_id_too_long"],
      [event({ properties: deep }), "properties_too_deep"],
    ] as const;
    for (const [e, code] of cases) {
      const res = await postJson(t, "/e", { ...e, api_key: TOKEN });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code });
    }
  });
});

describe("authentication", () => {
  test("missing token -> 401", async () => {
    const t = testApp();
    const res = await postJson(t, "/e", event());
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ type: "authentication_error", code: "missing_token" });
  });
  test("unknown token -> 401", async () => {
    const t = testApp();
    const res = await postJson(t, "/e", event({ api_key: "phc_nope" }));
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: "invalid_token" });
  });
  test("mixed tokens in one batch -> 401 naming the event", async () => {
    const t = testApp();
    const res = await postJson(t, "/batch", [event({ api_key: TOKEN }), event({ api_key: OTHER_TOKEN })]);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: "mixed_tokens", index: 1 });
    const res2 = await postJson(t, "/batch", { api_key: TOKEN, batch: [event({ properties: { token: OTHER_TOKEN } })] });
    expect(await res2.json()).toMatchObject({ code: "mixed_tokens", index: 0 });
    expect(t.sink.messages).toHaveLength(0);
  });
  test("team_id is the token's project", async () => {
    const t = testApp();
    await postJson(t, "/e", event({ api_key: OTHER_TOKEN }));
    expect(captured(t.sink.messages[0]!.value).team_id).toBe(8);
  });
  test("PostgreSQL down: known (cached) token still captured, unknown token -> 503 not 401", async () => {
    const t = testApp();
    expect((await postJson(t, "/e", event({ api_key: TOKEN }))).status).toBe(200);
    t.source.down = true;
    expect((await postJson(t, "/e", event({ api_key: TOKEN }))).status).toBe(200);
    const res = await postJson(t, "/e", event({ api_key: OTHER_TOKEN }));
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    expect(await res.json()).toMatchObject({ code: "project_lookup_unavailable" });
  });
});

describe("limits", () => {
  test("empty batch -> 400", async () => {
    const t = testApp();
    const res = await postJson(t, "/batch", { api_key: TOKEN, batch: [] });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "empty_batch" });
  });
  test("more events than allowed -> 413", async () => {
    const t = testApp({ limits: { maxEventsPerRequest: 3, maxEventBytes: 1_000_000 } });
    const res = await postJson(t, "/batch", { api_key: TOKEN, batch: [event(), event(), event(), event()] });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: "too_many_events" });
  });
  test("2 MB cap on /e, 20 MB on /batch (declared Content-Length)", async () => {
    const t = testApp();
    const big = JSON.stringify({ api_key: TOKEN, batch: [event({ properties: { blob: "x".repeat(900_000) } }), event({ properties: { blob: "y".repeat(900_000) } }), event({ properties: { blob: "z".repeat(900_000) } })] });
    expect(big.length).toBeGreaterThan(2 * 1024 * 1024);
    const small = await post(t, "/e", big);
    expect(small.status).toBe(413);
    expect(await small.json()).toMatchObject({ code: "request_too_large" });
    expect((await post(t, "/batch", big)).status).toBe(200);
  });
  test("a chunked body (no Content-Length) is counted while it streams", async () => {
    const t = testApp({ maxRequestBytes: 10_000 });
    const chunk = new TextEncoder().encode("x".repeat(4096));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 100) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await t.app.request("/e", { method: "POST", body: stream, headers: { "content-type": "application/json" } });
    expect(res.status).toBe(413);
    expect(sent).toBeLessThan(10); // stopped reading soon after the cap
  });
  test("a gzip body that decompresses past the route's cap -> 413", async () => {
    const t = testApp({ maxRequestBytes: 50_000 });
    const body = gzipSync(JSON.stringify(event({ api_key: TOKEN, properties: { pad: "p".repeat(100_000) } })));
    const res = await post(t, "/e", body, { "content-type": "application/json", "content-encoding": "gzip" });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: "request_too_large" });
  });
  test("an event over the per-event cap -> 413 naming it", async () => {
    const t = testApp({ limits: { maxEventsPerRequest: 100, maxEventBytes: 2000 } });
    const res = await postJson(t, "/batch", { api_key: TOKEN, batch: [event(), event({ properties: { pad: "é".repeat(1000) } })] });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: "event_too_large", index: 1 });
    expect(t.sink.messages).toHaveLength(0);
  });
});

describe("publishing", () => {
  test("200 only after the sink acknowledged every event", async () => {
    const t = testApp();
    const { promise, resolve } = Promise.withResolvers<void>();
    t.sink.delay = promise;
    let answered = false;
    const pending = Promise.resolve(postJson(t, "/batch", { api_key: TOKEN, batch: [event(), event()] })).then((r) => {
      answered = true;
      return r;
    });
    await Bun.sleep(20);
    expect(answered).toBe(false);
    expect(t.sink.messages).toHaveLength(0);
    resolve();
    expect((await pending).status).toBe(200);
    expect(t.sink.messages).toHaveLength(2);
  });
  test("no acknowledgement within the produce timeout -> 503 + Retry-After, counted", async () => {
    const t = testApp({ produceTimeoutMs: 30 });
    t.sink.delay = new Promise(() => {});
    const res = await postJson(t, "/batch", { api_key: TOKEN, batch: [event(), event(), event()] });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    expect(await res.json()).toMatchObject({ type: "unavailable", code: "produce_timeout" });
    expect(await counter(t.registry, "capture_events_dropped_total", { reason: "produce_timeout" })).toBe(3);
  });
  test("sink failure -> 503 (retriable) or 413 (message too large)", async () => {
    const t = testApp();
    t.sink.failWith = new EventSinkError("retriable", "_ALL_BROKERS_DOWN");
    const down = await postJson(t, "/e", event({ api_key: TOKEN }));
    expect(down.status).toBe(503);
    expect(down.headers.get("retry-after")).toBe("5");
    expect(await down.json()).toMatchObject({ code: "kafka_unavailable" });
    t.sink.failWith = new EventSinkError("too_large", "MSG_SIZE_TOO_LARGE");
    const big = await postJson(t, "/e", event({ api_key: TOKEN }));
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ code: "event_too_large" });
  });
  test("accepted events are counted", async () => {
    const t = testApp();
    await postJson(t, "/batch", { api_key: TOKEN, batch: [event(), event()] });
    expect(await counter(t.registry, "capture_events_accepted_total", { destination: "events" })).toBe(2);
    expect(await counter(t.registry, "capture_requests_total", { route: "/batch", status: "200" })).toBe(1);
    for (const step of ["decode", "limits", "authenticate", "validate", "normalize", "publish"]) {
      expect(await counter(t.registry, "capture_step_runs_total", { step })).toBe(1);
    }
    expect(await counter(t.registry, "capture_step_seconds_total", { step: "publish" })).toBeGreaterThan(0);
  });
  test("while shutting down: 503, nothing produced", async () => {
    const t = testApp({ accepting: () => false });
    const res = await postJson(t, "/e", event({ api_key: TOKEN }));
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: "shutting_down" });
    expect(t.sink.messages).toHaveLength(0);
  });
});

describe("normalisation through the app", () => {
  test("clock skew from the envelope's sent_at, applied to every event", async () => {
    const t = testApp();
    const client = NOW - 3_600_000; // the client's clock is 1 h behind
    await postJson(t, "/batch", {
      api_key: TOKEN,
      sent_at: new Date(client).toISOString(),
      batch: [event({ timestamp: new Date(client - 2000).toISOString() }), event({ timestamp: new Date(client - 1000).toISOString() })],
    });
    expect(t.sink.messages.map((m) => captured(m.value).timestamp)).toEqual([
      new Date(NOW - 2000).toISOString(),
      new Date(NOW - 1000).toISOString(),
    ]);
  });
  test("sent_at from posthog-js's ?_= when the body has none", async () => {
    const t = testApp();
    const client = NOW + 600_000;
    await postJson(t, `/e/?_=${client}`, event({ api_key: TOKEN, timestamp: new Date(client - 500).toISOString() }));
    expect(captured(t.sink.messages[0]!.value).timestamp).toBe(new Date(NOW - 500).toISOString());
  });
  test("ip from X-Forwarded-For when trusted; empty when IP capture is off", async () => {
    const on = testApp();
    await postJson(on, "/e", event({ api_key: TOKEN }), { "x-forwarded-for": "203.0.113.7, 10.0.0.1" });
    expect(captured(on.sink.messages[0]!.value).ip).toBe("203.0.113.7");
    const off = testApp({ captureIp: false });
    await postJson(off, "/e", event({ api_key: TOKEN }), { "x-forwarded-for": "203.0.113.7" });
    expect(captured(off.sink.messages[0]!.value).ip).toBe("");
  });
  test("uuid kept; received_at is the server's clock", async () => {
    const t = testApp();
    const uuid = "01890a5d-ac96-774b-bcce-b302099a8057";
    await postJson(t, "/e", event({ api_key: TOKEN, uuid }));
    expect(captured(t.sink.messages[0]!.value)).toMatchObject({ uuid, received_at: new Date(NOW).toISOString() });
  });
});

describe("CORS", () => {
  test("preflight OPTIONS allows any origin with credentials", async () => {
    const t = testApp();
    const res = await t.app.request("/e/", {
      method: "OPTIONS",
      headers: { origin: "https://shop.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://shop.example");
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    expect(res.headers.get("access-control-allow-headers")).toBe("content-type");
  });
  test("successful and rejected answers both carry the CORS headers", async () => {
    const t = testApp();
    const ok = await postJson(t, "/e", event({ api_key: TOKEN }), { origin: "https://a.example" });
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://a.example");
    const bad = await postJson(t, "/e", event(), { origin: "https://a.example" });
    expect(bad.status).toBe(401);
    expect(bad.headers.get("access-control-allow-origin")).toBe("https://a.example");
  });
});
