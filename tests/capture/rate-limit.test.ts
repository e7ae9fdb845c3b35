/** Per-token rate limits in the real Redis, and both over-limit actions through the app. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisRateLimiter, type RateLimitAlgorithm } from "../../apps/capture/rate-limiter.ts";
import { createRedis } from "../../lib/redis/client.ts";
import { decodeCapturedEvent } from "../../lib/events/captured-event.ts";
import { counter, event, postJson, testApp, TOKEN } from "./support.ts";

const redis = createRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const prefix = `test:capture:rate:${Date.now().toString(36)}:${Math.floor(Math.random() * 1e6)}:`;
// The client does not queue commands while connecting (fail-fast by design): wait until it is ready.
beforeAll(async () => {
  if (redis.status !== "ready") await new Promise((resolve) => redis.once("ready", resolve));
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

function limiter(algorithm: RateLimitAlgorithm, ratePerSecond: number, burst = 10, windowSeconds = 1) {
  return new RedisRateLimiter(redis, { algorithm, ratePerSecond, burst, windowSeconds, keyPrefix: prefix });
}

describe("RedisRateLimiter", () => {
  test("fixed window: N events per window, Retry-After until the window ends, next window starts over", async () => {
    const l = limiter("fixed_window", 10, 0, 10);
    const t0 = 1_700_000_000_000; // aligned to a 10 s window
    expect(await l.take("fw-a", 60, t0)).toEqual({ allowed: true });
    expect(await l.take("fw-a", 40, t0 + 1000)).toEqual({ allowed: true });
    expect(await l.take("fw-a", 1, t0 + 2500)).toEqual({ allowed: false, retryAfterS: 8 });
    expect(await l.take("fw-b", 100, t0 + 2500)).toEqual({ allowed: true }); // per token
    expect(await l.take("fw-a", 100, t0 + 10_000)).toEqual({ allowed: true });
  });

  test("token bucket: burst, refill at the rate, debt for an oversized batch", async () => {
    const l = limiter("token_bucket", 10, 20);
    const t0 = 1_700_000_000_000;
    expect(await l.take("tb-a", 20, t0)).toEqual({ allowed: true });
    expect(await l.take("tb-a", 1, t0)).toEqual({ allowed: false, retryAfterS: 1 });
    expect(await l.take("tb-a", 5, t0 + 500)).toEqual({ allowed: true }); // 5 tokens refilled in 0.5 s
    expect(await l.take("tb-a", 5, t0 + 500)).toMatchObject({ allowed: false });
    // Full bucket lets a batch bigger than the bucket through, then the debt must be paid back.
    expect(await l.take("tb-b", 50, t0)).toEqual({ allowed: true });
    const after = await l.take("tb-b", 1, t0 + 1000);
    expect(after).toEqual({ allowed: false, retryAfterS: 3 });
  });
});

describe("over the limit, through the app", () => {
  test("action reject: 429 with Retry-After, nothing produced, counted", async () => {
    const t = testApp({
      // 1 event/s over a 10 s window: 10 events per window; the app's clock is fixed, so no window boundary.
      rateLimit: { limiter: limiter("fixed_window", 1, 0, 10), action: "reject", onError: () => {} },
    });
    const first = await postJson(t, "/batch", { api_key: TOKEN, batch: Array.from({ length: 10 }, () => event()) });
    expect(first.status).toBe(200);
    const res = await postJson(t, "/e", event({ api_key: TOKEN }));
    expect(res.status).toBe(429);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await res.json()).toMatchObject({ type: "rate_limited", code: "rate_limited" });
    expect(t.sink.messages).toHaveLength(10);
    expect(await counter(t.registry, "capture_events_dropped_total", { reason: "rate_limited" })).toBe(1);
  });

  test("action overflow: 200, events go to the overflow topic without key", async () => {
    const t = testApp({
      rateLimit: { limiter: limiter("token_bucket", 1, 2), action: "overflow", onError: () => {} },
    });
    expect((await postJson(t, "/batch", { api_key: TOKEN, batch: [event({ distinct_id: "a" }), event({ distinct_id: "b" })] })).status).toBe(200);
    expect((await postJson(t, "/batch", { api_key: TOKEN, batch: [event({ distinct_id: "c" })] })).status).toBe(200);
    expect(t.sink.topic("events").map((m) => m.key)).toEqual(["a", "b"]);
    const overflow = t.sink.topic("events_overflow");
    expect(overflow).toHaveLength(1);
    expect(overflow[0]!.key).toBeNull();
    const e = decodeCapturedEvent(overflow[0]!.value);
    expect(e.ok && e.event.distinct_id).toBe("c");
    expect(await counter(t.registry, "capture_events_accepted_total", { destination: "overflow" })).toBe(1);
  });

  test("Redis unreachable: requests pass (fail open) and the error is counted", async () => {
    let errors = 0;
    const t = testApp({
      rateLimit: { limiter: { take: () => Promise.reject(new Error("Connection is closed.")) }, action: "reject", onError: () => errors++ },
    });
    expect((await postJson(t, "/e", event({ api_key: TOKEN }))).status).toBe(200);
    expect(errors).toBe(1);
  });
});
