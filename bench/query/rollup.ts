/**
 * `bun bench/query/rollup.ts [--runs 5]`: the trend rollup on the seeded 10M events (`make seed`). Measures, through
 * the API in-process (cache off), plain `total` trends answered by the raw scan and by the rollup — the first
 * rollup request after its stored counts were cleared (it recounts and stores), then warm ones — and the storage
 * of each table (system.parts). If the scratch table `i15_scratch.r15` exists (uniqExactState(uuid) and
 * uniqExactState(distinct_id) per team, event and 15-minute slot: the design that was measured and rejected), its
 * size and read time are recorded too. Writes bench/results/trend-rollup-*.json.
 */
import { parseArgs } from "node:util";
import { Registry } from "prom-client";
import { createQueryApp } from "../../apps/query/app.ts";
import { KeyResolver, postgresKeyLookup } from "../../apps/query/auth.ts";
import { createClickHouse } from "../../lib/clickhouse/client.ts";
import { clickHouseRunner } from "../../lib/clickhouse/run.ts";
import { createLogger } from "../../lib/log/logger.ts";
import { createPostgres } from "../../lib/postgres/client.ts";
import { writeResult } from "../lib/results.ts";
import { SEED_PROJECT_FILE } from "./seed.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "5" } } });
const runs = Number(values.runs);
const seedProject = JSON.parse(await Bun.file(SEED_PROJECT_FILE).text()) as { id: number; secret_key: string };
const ch = createClickHouse({ url: process.env.CLICKHOUSE_URL ?? "http://127.0.0.1:8123", database: "analytics", requestTimeoutMs: 300_000 });
const pg = createPostgres(process.env.POSTGRES_URL ?? "postgres://ingest:ingest@127.0.0.1:5432/ingest", { max: 2 });
const common = {
  run: clickHouseRunner(ch),
  keys: new KeyResolver({ lookup: postgresKeyLookup(pg) }),
  cache: null,
  cacheTtlSeconds: 0,
  cachePastTtlSeconds: 0,
  maxExecutionTimeS: 120,
  log: createLogger("bench-rollup", "warn"),
  registry: new Registry(),
  readiness: {},
};
const raw = createQueryApp(common);
const rolled = createQueryApp({
  ...common,
  registry: new Registry(),
  rollupWrite: async (table, rows) => void (await ch.insert({ table, values: rows, format: "JSONEachRow" })),
});

async function call(app: typeof raw, body: unknown) {
  const started = performance.now();
  const res = await app.request("/api/trends", { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${seedProject.secret_key}` }, body: JSON.stringify(body) });
  const json = (await res.json()) as { series: { total: number }[]; clickhouse: { elapsed_ms: number; rows_read: number; bytes_read: number } };
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(json)}`);
  return { ms: performance.now() - started, total: json.series[0]!.total, ch: json.clickhouse };
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const scenarios = {
  "7-day daily $pageview total": { series: [{ event: "$pageview", math: "total" }], interval: "day", date_from: "-7d" },
  "30-day daily total, all events": { series: [{ event: null, math: "total" }], interval: "day", date_from: "-30d" },
  "7-day hourly $pageview total, Europe/Berlin": { series: [{ event: "$pageview", math: "total" }], interval: "hour", date_from: "-7d", timezone: "Europe/Berlin" },
};

await ch.command({ query: `ALTER TABLE events_slot_counts DELETE WHERE team_id = ${Number(seedProject.id)}`, clickhouse_settings: { mutations_sync: "1" } as never }).catch(async () => {
  await ch.command({ query: `ALTER TABLE events_slot_counts DELETE WHERE team_id = ${Number(seedProject.id)}` });
});
const results = [];
for (const [name, body] of Object.entries(scenarios)) {
  const cold = await call(rolled, body);
  const r = { raw: [] as number[], rollup: [] as number[], rawRead: 0, rollupRead: 0, rawBytes: 0, rollupBytes: 0 };
  let equal = true;
  for (let i = 0; i < runs; i++) {
    const a = await call(raw, body);
    const b = await call(rolled, body);
    r.raw.push(a.ms);
    r.rollup.push(b.ms);
    r.rawRead = a.ch.rows_read;
    r.rawBytes = a.ch.bytes_read;
    r.rollupRead = b.ch.rows_read;
    r.rollupBytes = b.ch.bytes_read;
    equal &&= a.total === b.total && a.total === cold.total;
  }
  const row = {
    scenario: name,
    body,
    total_equal: equal,
    raw_ms_median: median(r.raw),
    rollup_ms_median: median(r.rollup),
    rollup_cold_ms: cold.ms,
    raw_rows_read: r.rawRead,
    rollup_rows_read: r.rollupRead,
    raw_bytes_read: r.rawBytes,
    rollup_bytes_read: r.rollupBytes,
    raw_ms: r.raw,
    rollup_ms: r.rollup,
  };
  results.push(row);
  console.log(JSON.stringify(row));
}

const parts = (await (
  await ch.query({
    query: `SELECT database, table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts WHERE active AND ((database = 'analytics' AND table IN ('events', 'events_slot_inserts', 'events_slot_counts')) OR (database = 'i15_scratch' AND table = 'r15')) GROUP BY database, table ORDER BY database, table`,
    format: "JSONEachRow",
  })
).json()) as { database: string; table: string; rows: string; bytes: string }[];
console.table(parts);

// The rejected design, if its scratch table is there: read time of the same 7-day total from uniqExact states.
let states: { ms: number[]; note: string } | null = null;
if (parts.some((p) => p.table === "r15")) {
  const ms: number[] = [];
  const to = Math.floor(Date.now() / 3600_000) * 3600;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await ch.query({
      query: `SELECT sum(ev) FROM (SELECT slot, uniqExactMerge(events) AS ev FROM i15_scratch.r15 WHERE team_id = ${Number(seedProject.id)} AND event = '$pageview' AND slot >= toDateTime(${to - 7 * 86400}, 'UTC') AND slot < toDateTime(${to}, 'UTC') GROUP BY slot)`,
      format: "JSONEachRow",
    }).then((rs) => rs.json());
    ms.push(performance.now() - t0);
  }
  states = { ms, note: "uniqExactState(uuid) per (team, event, 15-min slot), totals only, no unique users; compare with the raw 7-day $pageview figures above" };
  console.log(JSON.stringify(states));
}
const load = (await Bun.file("/proc/loadavg").text()).trim();
console.log(await writeResult("trend-rollup", { team_id: seedProject.id, runs, load_average_after: load, results, storage: parts, uniq_exact_state_variant: states }));
await Promise.allSettled([ch.close(), pg.end({ timeout: 2 })]);
