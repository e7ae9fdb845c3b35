/**
 * `make stress-query`: repeated trend and funnel requests at a constant arrival rate (vegeta), the runbook's
 * query stress procedure. Requests refused by admission control (503 `overloaded`) are reported as shed, apart
 * from errors. Pass: admitted trend p95 < 2 s and funnel p95 < 10 s, every refusal answered within
 * SHED_MAX_MS (1000), no errors (any other non-200, e.g. a 504 at the execution limit).
 *
 *   RATE=1 DURATION=60s MIX=trend:3,funnel:1 CACHE_BUST=1 make stress-query   (breakdown:N adds breakdown trends)
 *
 * The project is QUERY_KEY's, or the one `bun run seed` recorded in .local/seed-project.json (the seeded
 * 10M-event dataset). CACHE_BUST=1 (default) sends Cache-Control: no-cache so every request reaches ClickHouse.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { histogram, writeChart } from "../bench/lib/chart.ts";
import { writeResult } from "../bench/lib/results.ts";
import { attack, readResults, type ResultRow, type Target } from "../bench/lib/vegeta.ts";
import { parseDuration } from "../bench/stress/setup.ts";

const env = process.env;
const ROOT = join(import.meta.dir, "..");
const queryUrl = env.QUERY_URL ?? "http://127.0.0.1:8001";
const rate = Number(env.RATE ?? 1);
const durationS = parseDuration(env.DURATION ?? "60s");
const cacheBust = (env.CACHE_BUST ?? "1") !== "0";
/** Longest a refusal (503 overloaded) may take. */
const shedLimitMs = Number(env.SHED_MAX_MS ?? 1000);
const limits = { trend: Number(env.TREND_P95_MS ?? 2000), breakdown: Number(env.TREND_P95_MS ?? 2000), funnel: Number(env.FUNNEL_P95_MS ?? 10_000) };

function queryKey(): string {
  if (env.QUERY_KEY) return env.QUERY_KEY;
  const recorded = join(env.INGEST_STATE_DIR ?? join(ROOT, ".local"), "seed-project.json");
  if (existsSync(recorded)) return (JSON.parse(readFileSync(recorded, "utf8")) as { secret_key: string }).secret_key;
  throw new Error("no project to query: set QUERY_KEY, or run `bun run seed` first (it records its project in .local/seed-project.json)");
}

type Kind = keyof typeof limits;
const mix: Kind[] = [];
for (const part of (env.MIX ?? "trend:3,funnel:1").split(",")) {
  const [kind, weight] = part.split(":");
  if (!(kind! in limits)) throw new Error(`MIX: unknown kind ${kind} (trend, breakdown, funnel)`);
  for (let i = 0; i < Number(weight ?? 1); i++) mix.push(kind as Kind);
}

const bodies: Record<Kind, object> = {
  trend: { series: [{ event: "$pageview", math: "total" }, { event: "$pageview", math: "unique_users" }], interval: "day", date_from: "-7d" },
  breakdown: { series: [{ event: "$pageview", math: "total" }], interval: "day", date_from: "-7d", breakdown: ["$browser"] },
  funnel: { steps: [{ event: "$pageview" }, { event: "signup" }, { event: "purchase" }], date_from: "-30d", window: { value: 14, unit: "day" } },
};
const paths: Record<Kind, string> = { trend: "/api/trends", breakdown: "/api/trends", funnel: "/api/funnels" };

const key = queryKey();
const kinds: Kind[] = [];
console.log(`stress-query: ${queryUrl}, ${rate} req/s for ${durationS}s, mix ${env.MIX ?? "trend:3,funnel:1"}, cache ${cacheBust ? "bypassed" : "allowed"}`);
const resultsPath = join(env.INGEST_STATE_DIR ?? join(ROOT, ".local"), `stress-query-${Date.now()}.bin`);
const overall = await attack({
  rate,
  durationS,
  timeoutMs: 60_000,
  resultsPath,
  name: "query",
  target: (i): Target => {
    const kind = mix[i % mix.length]!;
    kinds[i] = kind;
    return {
      method: "POST",
      url: `${queryUrl}${paths[kind]}`,
      header: { "Content-Type": ["application/json"], Authorization: [`Bearer ${key}`], ...(cacheBust ? { "Cache-Control": ["no-cache"] } : {}) },
      body: JSON.stringify(bodies[kind]),
    };
  },
});
const rows = await readResults(resultsPath);
await Bun.file(resultsPath).delete();

/** A 503 `overloaded` answer: admission control refused the request (counted apart from errors). */
function isShed(r: ResultRow): boolean {
  if (r.code !== 503 || !r.body) return false;
  try {
    return (JSON.parse(r.body) as { code?: string }).code === "overloaded";
  } catch {
    return false;
  }
}

const byKind = new Map<Kind, { lat: number[]; shedLat: number[]; errors: number; timeouts: number; errorCodes: Record<string, number> }>();
for (const r of rows) {
  const kind = kinds[r.seq] ?? "trend";
  const e = byKind.get(kind) ?? { lat: [], shedLat: [], errors: 0, timeouts: 0, errorCodes: {} };
  if (r.code === 200) e.lat.push(r.latency);
  else if (isShed(r)) e.shedLat.push(r.latency);
  else {
    e.errors++;
    if (r.code === 504) e.timeouts++;
    e.errorCodes[String(r.code)] = (e.errorCodes[String(r.code)] ?? 0) + 1;
  }
  byKind.set(kind, e);
}
const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? Number.NaN;
const summary = [...byKind].map(([kind, e]) => {
  const lat = e.lat.sort((a, b) => a - b);
  const shedLat = e.shedLat.sort((a, b) => a - b);
  const requests = lat.length + shedLat.length + e.errors;
  const p95 = q(lat, 0.95);
  const shedMax = shedLat.at(-1) ?? 0;
  // Admitted requests meet the SLO, refusals come fast, nothing else fails (a 504 is an execution-limit failure).
  const pass = e.errors === 0 && lat.length > 0 && p95 < limits[kind] && shedMax < shedLimitMs;
  return {
    kind,
    requests,
    admitted: lat.length,
    shed: shedLat.length,
    shed_share: requests === 0 ? 0 : shedLat.length / requests,
    shed_p99: q(shedLat, 0.99),
    shed_max: shedMax,
    errors: e.errors,
    timeouts: e.timeouts,
    error_codes: e.errorCodes,
    p50: q(lat, 0.5),
    p95,
    p99: q(lat, 0.99),
    max: lat.at(-1) ?? Number.NaN,
    limit_p95: limits[kind],
    pass,
  };
});
console.table(
  summary.map((s) => ({
    kind: s.kind,
    requests: s.requests,
    admitted: s.admitted,
    shed: `${s.shed} (${(s.shed_share * 100).toFixed(0)}%)`,
    "shed max ms": s.shed_max.toFixed(0),
    errors: s.errors,
    "504": s.timeouts,
    "p50 ms": s.p50.toFixed(0),
    "p95 ms": s.p95.toFixed(0),
    "p99 ms": s.p99.toFixed(0),
    "max ms": s.max.toFixed(0),
    "p95 limit": s.limit_p95,
    result: s.pass ? "pass" : "FAIL",
  })),
);
const path = await writeResult("stress-query", { query_url: queryUrl, rate, duration_s: durationS, cache_bust: cacheBust, mix: env.MIX ?? "trend:3,funnel:1", shed_limit_ms: shedLimitMs, label: env.LABEL ?? null, bodies, overall, kinds: summary });
const chart = await writeChart(path.replace(/\.json$/, "-latency.svg"), await histogram({ title: "Query latency (all kinds)", values: rows.map((r) => r.latency), bins: 30, xTitle: "latency (ms)", yTitle: "requests" }));
console.log(`results: ${path}\nchart:   ${chart}`);
const failed = summary.some((s) => !s.pass) || summary.length === 0;
console.log(failed ? "stress-query: FAIL" : "stress-query: pass");
process.exit(failed ? 1 : 0);
