/**
 * `bun bench/query/settings.ts [--jobs 16] [--configs 1x2,2x1,2x2,3x1]`: chooses the query app's admission
 * concurrency and ClickHouse `max_threads` by measurement. For each config `<concurrency>x<max_threads>` a closed
 * loop of `concurrency` workers runs the same job list (the stress mix: 3 seven-day trends per 30-day funnel,
 * exactly the API's SQL) on the seeded 10M events; it records per-kind latency, the jobs/s served, and each
 * query's peak memory from system.query_log (`log_queries=1`). Writes bench/results/query-settings-*.json.
 */
import { parseArgs } from "node:util";
import * as v from "valibot";
import { funnelSql, FunnelsRequestSchema } from "../../apps/query/funnels.ts";
import { resolveDateRange } from "../../apps/query/time-range.ts";
import { trendSeriesSql, TrendsRequestSchema } from "../../apps/query/trends.ts";
import { createClickHouse } from "../../lib/clickhouse/client.ts";
import { clickHouseRunner } from "../../lib/clickhouse/run.ts";
import type { SqlFragment } from "../../lib/clickhouse/sql.ts";
import { writeResult } from "../lib/results.ts";
import { SEED_PROJECT_FILE } from "./seed.ts";

const { values } = parseArgs({ options: { jobs: { type: "string", default: "16" }, configs: { type: "string", default: "1x2,2x1,2x2,3x1" } } });
const teamId = (JSON.parse(await Bun.file(SEED_PROJECT_FILE).text()) as { id: number }).id;
const ch = createClickHouse({ url: process.env.CLICKHOUSE_URL ?? "http://127.0.0.1:8123", database: "analytics", requestTimeoutMs: 300_000 });
const run = clickHouseRunner(ch);
const now = Date.now();

const trendReq = v.parse(TrendsRequestSchema, { series: [{ event: "$pageview", math: "total" }, { event: "$pageview", math: "unique_users" }], interval: "day", date_from: "-7d" });
const trend = trendSeriesSql(trendReq, 0, teamId, resolveDateRange(trendReq, "UTC", now));
const funnelReq = v.parse(FunnelsRequestSchema, { steps: [{ event: "$pageview" }, { event: "signup" }, { event: "purchase" }], date_from: "-30d", window: { value: 14, unit: "day" } });
const funnel = funnelSql(funnelReq, teamId, resolveDateRange(funnelReq, "UTC", now));

const jobs: { kind: "trend" | "funnel"; sql: SqlFragment }[] = [];
for (let i = 0; i < Number(values.jobs); i++) jobs.push(i % 4 === 3 ? { kind: "funnel", sql: funnel } : { kind: "trend", sql: trend });

const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? Number.NaN;

const results = [];
for (const config of values.configs.split(",")) {
  const [concurrency, threads] = config.split("x").map(Number) as [number, number];
  const tag = `settings_${Date.now()}_${config}`;
  const lat: Record<string, number[]> = { trend: [], funnel: [] };
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let j = next++; j < jobs.length; j = next++) {
        const t0 = performance.now();
        await run(jobs[j]!.sql, { settings: { max_threads: threads, log_queries: 1, max_execution_time: 120 }, queryId: `${tag}_${w}_${j}` });
        lat[jobs[j]!.kind]!.push(performance.now() - t0);
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  await ch.command({ query: "SYSTEM FLUSH LOGS" });
  const mem = (await (
    await ch.query({
      query: `SELECT max(memory_usage) AS peak FROM system.query_log WHERE type = 2 AND query_id LIKE '${tag}%'`,
      format: "JSONEachRow",
    })
  ).json()) as { peak: string }[];
  const row = {
    config,
    concurrency,
    max_threads: threads,
    jobs: jobs.length,
    jobs_per_s: jobs.length / elapsedS,
    trend_ms: { p50: q(lat.trend!, 0.5), p95: q(lat.trend!, 0.95), max: Math.max(...lat.trend!) },
    funnel_ms: { p50: q(lat.funnel!, 0.5), p95: q(lat.funnel!, 0.95), max: Math.max(...lat.funnel!) },
    peak_memory_bytes: Number(mem[0]?.peak ?? Number.NaN),
  };
  results.push(row);
  console.log(JSON.stringify(row));
}
const load = (await Bun.file("/proc/loadavg").text()).trim();
console.log(await writeResult("query-settings", { team_id: teamId, load_average_after: load, results }));
await ch.close();
