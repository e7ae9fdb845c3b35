/** HTTP behaviour of the query app: keys, error bodies, cache (hit/miss/bypass, Redis down), timeouts (504),
 * ClickHouse down (503), /health, /ready, /metrics, /openapi.json. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClickHouse } from "../../lib/clickhouse/client.ts";
import { clickHouseRunner, type QueryRunner } from "../../lib/clickhouse/run.ts";
import { sql } from "../../lib/clickhouse/sql.ts";
import { pingPostgres } from "../../lib/postgres/client.ts";
import { createRedis, pingRedis } from "../../lib/redis/client.ts";
import { KeyResolver, LruTtlCache } from "../../apps/query/auth.ts";
import { redisQueryCache } from "../../apps/query/cache.ts";
import { countingRunner, createHarness, fixtureEvents, post, type Harness, type Project } from "./fixtures.ts";

let h: Harness;
let p: Project;
const BODY = { series: [{ event: "$pageview" }], date_from: "2024-10-10", date_to: "2024-11-10" };

beforeAll(async () => {
  h = await createHarness();
  p = await h.createProject();
  await h.load(fixtureEvents(p.id, 3, 50, 1500));
});
afterAll(() => h.close());

describe("keys", () => {
  test("401 without a key, with a malformed header, with an unknown key", async () => {
    const app = h.app({ cache: null });
    const none = await post(app, "/api/trends", null, BODY);
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ type: "authentication_error", code: "missing_key" });
    const malformed = await app.request("/api/trends", { method: "POST", headers: { authorization: "Basic abc" }, body: "{}" });
    expect(malformed.status).toBe(401);
    const unknown = await post(app, "/api/trends", "phx_not_a_real_key_123456", BODY);
    expect(unknown.status).toBe(401);
    expect(unknown.body.code).toBe("invalid_key");
  });

  test("the key lookup is cached in-process (PostgreSQL asked once)", async () => {
    let calls = 0;
    const keys = new KeyResolver({ lookup: async () => (calls++, p.id) });
    const app = h.app({ cache: null, keys });
    for (let i = 0; i < 5; i++) expect((await post(app, "/api/trends", p.key, BODY)).status).toBe(200);
    expect(calls).toBe(1);
  });

  test("LRU evicts the least recent entry and entries expire", () => {
    let now = 0;
    const c = new LruTtlCache<string, number>(2, () => now);
    c.set("a", 1, 100);
    c.set("b", 2, 100);
    expect(c.get("a")).toBe(1);
    c.set("c", 3, 100);
    expect(c.get("b")).toBeUndefined();
    expect(c.get("a")).toBe(1);
    now = 100;
    expect(c.get("a")).toBeUndefined();
  });

  test("PostgreSQL unavailable during a lookup is 503, not 401", async () => {
    const keys = new KeyResolver({ lookup: () => Promise.reject(new Error("connection refused")) });
    const res = await post(h.app({ cache: null, keys }), "/api/trends", p.key, BODY);
    expect(res.status).toBe(503);
    expect(res.body.code).toBe("auth_unavailable");
  });
});

describe("errors", () => {
  test("400 bodies name the path", async () => {
    const app = h.app({ cache: null });
    const bad = await post(app, "/api/trends", p.key, { series: [{ event: "x", math: "median" }] });
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ type: "invalid_request", code: "invalid_request", detail: expect.any(String), path: "series.0.math" });
    const json = await post(app, "/api/trends", p.key, "{not json");
    expect(json.status).toBe(400);
    expect(json.body.code).toBe("invalid_json");
    const steps = await post(app, "/api/funnels", p.key, { steps: [{ event: "a" }] });
    expect(steps.status).toBe(400);
    expect(steps.body.path).toBe("steps");
    const range = await post(app, "/api/trends", p.key, { ...BODY, date_from: "2024-11-10", date_to: "2024-11-01" });
    expect(range.body.path).toBe("date_to");
    const big = await post(app, "/api/trends", p.key, { ...BODY, interval: "hour", date_from: "2020-01-01" });
    expect(big.status).toBe(400);
    expect(big.body.code).toBe("range_too_large");
  });

  test("a query over max_execution_time is 504 (real ClickHouse timeout)", async () => {
    const inner = clickHouseRunner(h.ch);
    // The app's own query is swapped for one that cannot finish in 1 s; the timeout and its error are ClickHouse's.
    const slow: QueryRunner = (_q, o) => inner(sql`SELECT count() FROM system.numbers WHERE NOT ignore(sipHash64(number))`, o);
    const res = await post(h.app({ cache: null, run: slow, maxExecutionTimeS: 1 }), "/api/trends", p.key, BODY);
    expect(res.status).toBe(504);
    expect(res.body.code).toBe("query_timeout");
    expect(JSON.stringify(res.body)).not.toMatch(/SELECT|Exception/);
  });

  test("ClickHouse unreachable is 503 with Retry-After", async () => {
    const down = createClickHouse({ url: "http://127.0.0.1:1", database: "analytics", requestTimeoutMs: 2000 });
    const res = await post(h.app({ cache: null, run: clickHouseRunner(down) }), "/api/trends", p.key, BODY);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    await down.close();
  });

  test("unknown route is a JSON 404", async () => {
    const res = await h.app().request("/nope");
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).code).toBe("not_found");
  });
});

describe("cache", () => {
  test("miss, then hit without touching ClickHouse; no-cache bypasses; key normalization", async () => {
    const run = countingRunner(clickHouseRunner(h.ch));
    const app = h.app({ run });
    // A unique request per run so other runs' entries cannot answer it.
    const body = { ...BODY, series: [{ event: `$pageview`, filters: [{ key: "nonce", operator: "neq", value: crypto.randomUUID() }] }] };
    const first = await post(app, "/api/trends", p.key, body);
    expect(first.headers.get("x-cache")).toBe("miss");
    const second = await post(app, "/api/trends", p.key, body);
    expect(second.headers.get("x-cache")).toBe("hit");
    expect(second.body).toEqual(first.body);
    expect(run.calls).toBe(1);
    // Same question, defaults spelled out and keys reordered: same entry.
    const spelled = { date_to: body.date_to, interval: "day", timezone: "UTC", date_from: body.date_from, series: [{ math: "total", ...body.series[0] }] };
    expect((await post(app, "/api/trends", p.key, spelled)).headers.get("x-cache")).toBe("hit");
    const bypass = await post(app, "/api/trends", p.key, body, { "cache-control": "no-cache" });
    expect(bypass.headers.get("x-cache")).toBe("bypass");
    expect(run.calls).toBe(2);
  });

  test("Redis down: queries still answer (X-Cache: miss)", async () => {
    const dead = createRedis("redis://127.0.0.1:1");
    const app = h.app({ cache: redisQueryCache(dead) });
    const started = performance.now();
    const res = await post(app, "/api/trends", p.key, BODY);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-cache")).toBe("miss");
    expect(performance.now() - started).toBeLessThan(3000);
    dead.disconnect();
  });
});

describe("operational routes", () => {
  test("/health, /ready with real dependencies, /ready 503 naming a dead one", async () => {
    const ok = h.app({ readiness: { clickhouse: async () => (await h.ch.ping()).success || Promise.reject(new Error("down")), postgres: () => pingPostgres(h.pg), redis: () => pingRedis(h.redis) } });
    expect((await ok.request("/health")).status).toBe(200);
    const ready = await ok.request("/ready");
    expect(ready.status).toBe(200);
    const dead = createRedis("redis://127.0.0.1:1");
    const bad = h.app({ readiness: { redis: () => pingRedis(dead) } });
    const r = await bad.request("/ready");
    expect(r.status).toBe(503);
    expect(((await r.json()) as any).failing).toEqual(["redis"]);
    dead.disconnect();
  });

  test("/metrics has latency per endpoint and cache results", async () => {
    const app = h.app();
    await post(app, "/api/trends", p.key, BODY);
    await post(app, "/api/trends", p.key, BODY);
    const text = await (await app.request("/metrics")).text();
    expect(text).toMatch(/query_http_request_duration_seconds_count\{[^}]*endpoint="trends"[^}]*\} [1-9]/);
    expect(text).toMatch(/query_cache_requests_total\{[^}]*result="hit"[^}]*\} [1-9]/);
    expect(text).toContain("query_cache_hit_ratio");
  });

  test("/openapi.json documents both endpoints with request schemas", async () => {
    const doc = (await (await h.app().request("/openapi.json")).json()) as any;
    expect(doc.openapi).toBe("3.1.0");
    const trends = doc.paths["/api/trends"].post.requestBody.content["application/json"].schema;
    expect(trends.properties.series.type).toBe("array");
    expect(trends.properties.interval.enum).toEqual(["hour", "day", "week", "month"]);
    const funnels = doc.paths["/api/funnels"].post.requestBody.content["application/json"].schema;
    expect(funnels.properties.order.enum).toEqual(["ordered", "strict", "unordered"]);
    expect(doc.paths["/api/funnels"].post.responses["504"]).toBeDefined();
  });
});
