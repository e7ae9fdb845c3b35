/**
 * Admission control end to end: the real query app process (apps/query/main.ts) on real ClickHouse, one query slot
 * and a short queue budget, hit by a burst of concurrent uncached trend requests. The overflow is shed with 503
 * `overloaded` + Retry-After at once (never after waiting for a query), the admitted ones answer correctly, the
 * shed requests are counted in /metrics, and a second project still gets through while the first one floods.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SHED_REASONS } from "../../apps/query/admission.ts";
import { startApp, type AppProcess } from "../support/apps.ts";
import { createHarness, fixtureEvents, type Harness, type Project } from "./fixtures.ts";

const BUDGET_MS = 4000;
let h: Harness;
let flooder: Project;
let other: Project;
let app: AppProcess;

beforeAll(async () => {
  h = await createHarness();
  flooder = await h.createProject();
  other = await h.createProject();
  // Enough rows that a breakdown trend takes a noticeable time, so the burst arrives while slots are held.
  await h.load(fixtureEvents(flooder.id, 5, 2000, 60_000));
  await h.load(fixtureEvents(other.id, 6, 50, 1000));
  app = await startApp("query", {
    QUERY_MAX_CONCURRENT_QUERIES: "1",
    QUERY_QUEUE_BUDGET_MS: String(BUDGET_MS),
    QUERY_QUEUE_MAX: "64",
    QUERY_CACHE_TTL_S: "0",
    LOG_LEVEL: "warn",
  });
});
afterAll(async () => {
  await app?.stop();
  await h.close();
});

const BODY = {
  series: [{ event: null, math: "total" }, { event: null, math: "unique_users" }],
  breakdown: ["$browser", "plan"],
  date_from: "2024-10-06",
  date_to: "2024-11-14",
};

async function call(key: string, body: unknown) {
  const started = performance.now();
  const res = await fetch(`${app.url}/api/trends`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}`, "cache-control": "no-cache" },
    body: JSON.stringify(body),
  });
  return { status: res.status, retryAfter: res.headers.get("retry-after"), body: (await res.json()) as any, ms: performance.now() - started };
}

describe("admission control under a burst (real app, real ClickHouse)", () => {
  test("overflow is shed at once with 503 overloaded + Retry-After; admitted answers are right; another project gets through", async () => {
    // Warm the key cache and measure one request alone.
    const alone = await call(flooder.key, BODY);
    expect(alone.status).toBe(200);

    // Enough requests that their work is three times the queue budget, however fast the machine is today.
    const size = Math.min(200, Math.ceil((3 * BUDGET_MS) / Math.max(alone.ms, 20)) + 10);
    const burst = Array.from({ length: size }, () => call(flooder.key, BODY));
    // Once the first refusal arrived the flood is queued or shed; the other project asks now.
    const firstShed = await Promise.race(burst.map((p) => p.then((r) => (r.status === 503 ? r : new Promise<never>(() => {})))));
    expect(firstShed.status).toBe(503);
    const otherResult = await call(other.key, { series: [{ event: null }], date_from: "2024-10-06", date_to: "2024-11-14" });
    const results = await Promise.all(burst);

    const ok = results.filter((r) => r.status === 200);
    const shed = results.filter((r) => r.status === 503);
    console.log(`burst of ${size}: ${ok.length} admitted, ${shed.length} shed; alone ${alone.ms.toFixed(0)} ms; ` +
      `shed answered in max ${Math.max(...shed.map((r) => r.ms)).toFixed(0)} ms; admitted max ${Math.max(...ok.map((r) => r.ms)).toFixed(0)} ms`);
    expect(ok.length + shed.length).toBe(size);
    expect(ok.length).toBeGreaterThan(0);
    expect(shed.length).toBeGreaterThan(0);
    for (const r of shed) {
      expect(r.body.code).toBe("overloaded");
      expect(r.body.type).toBe("server_error");
      expect(SHED_REASONS as readonly string[]).toContain(r.body.reason);
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      // Refused within the queue budget (plus generous room for a loaded machine), not after a query's time.
      expect(r.ms).toBeLessThan(BUDGET_MS + 3000);
    }
    const strip = (b: any) => ({ ...b, clickhouse: undefined });
    for (const r of ok) expect(strip(r.body)).toEqual(strip(alone.body));

    // Round-robin: the other project waited behind at most one flood request (and the running one), well within
    // the budget, so it was admitted.
    expect(otherResult.status).toBe(200);
    expect(otherResult.body.series[0].total).toBe(new Set(fixtureEvents(other.id, 6, 50, 1000).map((e) => e.uuid)).size);

    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    const shedCount = [...metrics.matchAll(/^query_admission_shed_total\{[^}]*\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0);
    expect(shedCount).toBe(shed.length);
    expect(metrics).toMatch(/^query_admission_queue_length\{[^}]*\} 0$/m);
    expect(metrics).toMatch(/^query_admission_wait_seconds_count\{[^}]*kind="trends_breakdown"[^}]*\} \d+/m);
  }, 120_000);
});
