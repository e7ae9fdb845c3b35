/**
 * Query benchmark: `bun run bench:query [--requests 30] [--funnel-requests 16]`
 *
 * Seeds (or reuses) 10M events / 200k users / 30 days, then for each scenario measures p50/p95/p99 through the API
 * (in-process Bun.serve on an ephemeral port, real PostgreSQL key lookup, result cache off) with 1 and 8 concurrent
 * clients, and the same SQL run directly against ClickHouse with the same concurrency, alternating request by
 * request with the API calls. Prints a
 * table and writes bench/results/query-<time>.json (bench/lib/results.ts: machine, versions, commit).
 */
import { writeResult } from "../lib/results.ts";
import { parseArgs } from "node:util";
import { Registry } from "prom-client";
import { createQueryApp } from "../../apps/query/app.ts";
import { KeyResolver, postgresKeyLookup } from "../../apps/query/auth.ts";
import { funnelSql, FunnelsRequestSchema } from "../../apps/query/funnels.ts";
import { resolveDateRange } from "../../apps/query/time-range.ts";
import { trendSeriesSql, TrendsRequestSchema } from "../../apps/query/trends.ts";
import { createClickHouse } from "../../lib/clickhouse/client.ts";
import { clickHouseRunner } from "../../lib/clickhouse/run.ts";
import { sql } from "../../lib/clickhouse/sql.ts";
import { createLogger } from "../../lib/log/logger.ts";
import { createPostgres } from "../../lib/postgres/client.ts";
import * as v from "valibot";
import { DEFAULT_ANONYMOUS_SHARE, seed } from "./seed.ts";
import type { PersonMode } from "../../apps/query/event-source.ts";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "10000000" },
    users: { type: "string", default: "200000" },
    days: { type: "string", default: "30" },
    requests: { type: "string", default: "30" },
    "funnel-requests": { type: "string", default: "16" },
  },
});
const shape = { events: Number(values.events), users: Number(values.users), days: Number(values.days), seed: 1, anonymousShare: DEFAULT_ANONYMOUS_SHARE, batch: 100_000 };
// The key seed() recorded in .local/seed-project.json: issuing another here would leave stress-query a stale one.
const { teamId, secretKey: key } = await seed(shape);

const ch = createClickHouse({ url: process.env.CLICKHOUSE_URL ?? "http://127.0.0.1:8123", database: "analytics", requestTimeoutMs: 120_000 });
const pg = createPostgres(process.env.POSTGRES_URL ?? "postgres://ingest:ingest@127.0.0.1:5432/ingest", { max: 2 });
const run = clickHouseRunner(ch);
const app = createQueryApp({
  run,
  keys: new KeyResolver({ lookup: postgresKeyLookup(pg) }),
  cache: null,
  cacheTtlSeconds: 0,
  cachePastTtlSeconds: 0,
  maxExecutionTimeS: 60,
  log: createLogger("bench-query", "warn"),
  registry: new Registry(),
  readiness: {},
});
const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch });
const base = `http://127.0.0.1:${server.port}`;

interface Scenario {
  name: string;
  path: "/api/trends" | "/api/funnels";
  body: Record<string, unknown>;
  requests: number;
  /** The same SQL the API generates, run directly. */
  raw: () => Promise<number>;
}

const now = Date.now();
function trendRaw(body: unknown, mode?: PersonMode) {
  const req = v.parse(TrendsRequestSchema, body);
  const range = resolveDateRange(req, req.timezone, now);
  // Exactly what runTrends sends: one query per distinct SQL text (series differing only in math share one).
  const queries = [...new Map(req.series.map((_, i) => trendSeriesSql(req, i, teamId, range, "events", mode)).map((q) => [q.text, q])).values()];
  return async () => {
    const started = performance.now();
    await Promise.all(queries.map((q) => run(q)));
    return performance.now() - started;
  };
}
function funnelRaw(body: unknown, mode?: PersonMode) {
  const req = v.parse(FunnelsRequestSchema, body);
  const range = resolveDateRange(req, req.timezone, now);
  return async () => {
    const started = performance.now();
    await run(funnelSql(req, teamId, range, "events", mode));
    return performance.now() - started;
  };
}

const N = Number(values.requests);
const NF = Number(values["funnel-requests"]);
const trend7d = { series: [{ event: "$pageview" }, { event: "$pageview", math: "unique_users" }], interval: "day", date_from: "-7d" };
const trendBd = { series: [{ event: "$pageview" }], interval: "day", date_from: "-7d", breakdown: ["$browser"] };
const funnel30d = { steps: [{ event: "signup" }, { event: "activate" }, { event: "purchase" }], date_from: "-30d" };
const scenarios: Scenario[] = [
  { name: "trend 7d daily (total + unique users)", path: "/api/trends", body: trend7d, requests: N, raw: trendRaw(trend7d) },
  { name: "trend 7d daily, breakdown $browser", path: "/api/trends", body: trendBd, requests: N, raw: trendRaw(trendBd) },
  { name: "funnel 3 steps, 30d, ordered", path: "/api/funnels", body: funnel30d, requests: NF, raw: funnelRaw(funnel30d) },
];

async function apiOnce(s: Scenario): Promise<number> {
  const started = performance.now();
  const res = await fetch(base + s.path, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "cache-control": "no-cache" },
    body: JSON.stringify(s.body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${s.name}: HTTP ${res.status} ${text}`);
  if (res.headers.get("x-cache") !== "bypass") throw new Error("the cache must be off for the benchmark");
  return performance.now() - started;
}

async function measure(count: number, concurrency: number, once: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        out.push(await once());
      }
    }),
  );
  return out;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const summary = (xs: number[]) => ({ n: xs.length, p50: pct(xs, 50), p95: pct(xs, 95), p99: pct(xs, 99), mean: xs.reduce((a, b) => a + b, 0) / xs.length });

const results: Record<string, unknown>[] = [];
for (const s of scenarios) {
  // Warm-up: caches of ClickHouse's marks and the key lookup, JIT.
  await apiOnce(s);
  await s.raw();
  for (const concurrency of [1, 8]) {
    const count = concurrency === 1 ? s.requests : Math.max(s.requests, 2 * concurrency);
    // API and raw alternate request by request in every client, so both see the same machine load (this machine is
    // shared; load moves within seconds).
    const apiTimes: number[] = [];
    const rawTimes: number[] = [];
    await measure(count, concurrency, async () => {
      apiTimes.push(await apiOnce(s));
      rawTimes.push(await s.raw());
      return 0;
    });
    const api = summary(apiTimes);
    const raw = summary(rawTimes);
    const load = (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).map(Number);
    const row = { scenario: s.name, concurrency, loadavg_after: load, api, raw, overhead_p50: api.p50 / raw.p50 - 1, overhead_p95: api.p95 / raw.p95 - 1 };
    results.push(row);
    console.error(`${s.name} c=${concurrency}: api p50 ${api.p50.toFixed(1)} p95 ${api.p95.toFixed(1)} | raw p50 ${raw.p50.toFixed(1)} p95 ${raw.p95.toFixed(1)} ms`);
  }
}

// The cost of counting persons: the same queries resolving each event's person through person_distinct_id (what the
// API does) against counting distinct_ids (what it did before persons), alternating request by request, one client.
const personCost: Record<string, unknown>[] = [];
const trendUsers = { series: [{ event: "$pageview", math: "unique_users" }], interval: "day", date_from: "-7d" };
for (const [name, persons, ids] of [
  ["trend 7d daily unique users", trendRaw(trendUsers, "person"), trendRaw(trendUsers, "distinct_id")],
  ["funnel 3 steps, 30d, ordered", funnelRaw(funnel30d, "person"), funnelRaw(funnel30d, "distinct_id")],
] as const) {
  await persons();
  await ids();
  const p: number[] = [];
  const d: number[] = [];
  for (let i = 0; i < (name.startsWith("funnel") ? NF : N); i++) {
    p.push(await persons());
    d.push(await ids());
  }
  const row = { scenario: name, by_person: summary(p), by_distinct_id: summary(d), cost_p50: summary(p).p50 / summary(d).p50 - 1, cost_p95: summary(p).p95 / summary(d).p95 - 1 };
  personCost.push(row);
  console.error(`${name}: persons p50 ${row.by_person.p50.toFixed(1)} p95 ${row.by_person.p95.toFixed(1)} | distinct_ids p50 ${row.by_distinct_id.p50.toFixed(1)} p95 ${row.by_distinct_id.p95.toFixed(1)} ms`);
}
const mapped = await run<{ persons: string; ids: string }>(sql`SELECT uniqExact(person_id) AS persons, count() AS ids FROM person_distinct_id WHERE team_id = ${teamId}`);

const f = (x: number) => x.toFixed(1).padStart(8);
const lines = [
  `${"scenario".padEnd(40)} ${"conc".padStart(4)} | ${"api p50".padStart(8)} ${"p95".padStart(8)} ${"p99".padStart(8)} | ${"raw p50".padStart(8)} ${"p95".padStart(8)} ${"p99".padStart(8)} | overhead p50/p95`,
  ...results.map((r: any) =>
    `${r.scenario.padEnd(40)} ${String(r.concurrency).padStart(4)} | ${f(r.api.p50)} ${f(r.api.p95)} ${f(r.api.p99)} | ${f(r.raw.p50)} ${f(r.raw.p95)} ${f(r.raw.p99)} | ${(100 * r.overhead_p50).toFixed(1)}% / ${(100 * r.overhead_p95).toFixed(1)}%`,
  ),
];
console.log(`latency in ms; ${shape.events} events, ${shape.users} users, ${shape.days} days; cache off\n` + lines.join("\n"));

const file = await writeResult("query", {
  dataset: { ...shape, team_id: teamId },
  targets: { trend_p95_ms: 200, funnel_p95_ms: 1500, api_overhead_max: 0.1, seed_slo: { trend_p95_ms: 2000, funnel_p95_ms: 10000 } },
  note: "api = wall time of a request through the HTTP API (auth, validation, SQL, JSON); raw = the same SQL through @clickhouse/client-web; same process, same run, alternating request by request",
  loadavg_at_end: (await Bun.file("/proc/loadavg").text()).trim(),
  results,
  persons_vs_distinct_ids: {
    note: "raw SQL, 1 client, alternating: persons = events joined to person_distinct_id (the API since issue 14); distinct_ids = no join (before)",
    mapped: mapped.rows[0],
    results: personCost,
  },
});
console.error(`wrote ${file}`);
await server.stop();
await Promise.allSettled([ch.close(), pg.end({ timeout: 2 })]);
