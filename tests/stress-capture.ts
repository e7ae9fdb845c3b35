/**
 * `make stress-capture`: the runbook's capture stress procedure on vegeta (open model, constant arrival rate).
 *
 *   RATES=100,1000,5000 STAGE=40s make stress-capture          (default: about two and a half minutes)
 *   RATES=100,1000,5000,10000 STAGE=600s make stress-capture   (the runbook's 10-30 minute run)
 *
 * Each stage sends realistic single events (a pool of distinct ids, event names and properties) to our native
 * POST /v1/capture (POST /v1/batch with EVENTS_PER_REQUEST > 1) at a constant rate: those answer 202 once the
 * broker acknowledged, the runbook's success status (PostHog's own paths answer 200, as PostHog does). Pass per
 * stage: >= 99.9% answered 202 and p99 < 200 ms. While it runs, the
 * pipeline monitor samples consumer lag and ClickHouse row counts and times probe events until queryable.
 * Prints a per-stage table, writes JSON + charts under bench/results/, exits 1 when a criterion fails.
 *
 * Environment: CAPTURE_URL (http://127.0.0.1:8000), CAPTURE_TOKEN + CAPTURE_TEAM_ID (default: a new project),
 * EVENTS_PER_REQUEST (1), P99_MS (200), MIN_202 (0.999), plus CLICKHOUSE_URL, CONSUMER_KAFKA_GROUP_ID.
 */
import { join } from "node:path";
import { lineChart, writeChart } from "../bench/lib/chart.ts";
import { writeResult } from "../bench/lib/results.ts";
import { attack, type Report } from "../bench/lib/vegeta.ts";
import { PipelineMonitor } from "../bench/stress/pipeline-monitor.ts";
import { ensureProject, parseDuration } from "../bench/stress/setup.ts";

const env = process.env;
const rates = (env.RATES ?? "100,1000,5000").split(",").map((r) => Number(r.trim()));
const stageS = parseDuration(env.STAGE ?? "40s");
const captureUrl = env.CAPTURE_URL ?? "http://127.0.0.1:8000";
const perRequest = Number(env.EVENTS_PER_REQUEST ?? 1);
const p99Limit = Number(env.P99_MS ?? 200);
const min202 = Number(env.MIN_202 ?? 0.999);
if (rates.some((r) => !Number.isInteger(r) || r <= 0)) throw new Error(`RATES must be positive integers, got ${env.RATES}`);

const project = await ensureProject("stress-capture");
const DISTINCT_IDS = 20_000;
const NAMES = ["$pageview", "$pageview", "$pageview", "$autocapture", "signup", "purchase", "$identify"];
const PATHS = ["/", "/pricing", "/docs", "/blog/launch", "/signup", "/app/dashboard"];

function event(i: number) {
  const user = (i * 7919) % DISTINCT_IDS;
  return {
    event: NAMES[i % NAMES.length],
    distinct_id: `stress-${user}`,
    uuid: crypto.randomUUID(),
    properties: {
      $current_url: `https://example.com${PATHS[i % PATHS.length]}`,
      $browser: i % 3 ? "Chrome" : "Firefox",
      $os: i % 4 ? "Mac OS X" : "Windows",
      plan: user % 5 ? "free" : "pro",
      amount: (i % 100) + 0.99,
      stage_seq: i,
    },
  };
}

console.log(`stress-capture: ${captureUrl}, stages ${rates.join(" -> ")} req/s x ${stageS}s, ${perRequest} event(s)/request, team ${project.teamId}`);
const monitor = new PipelineMonitor({
  kafka: env.CONSUMER_KAFKA_BOOTSTRAP_SERVERS ?? "127.0.0.1:9092",
  group: env.CONSUMER_KAFKA_GROUP_ID ?? "event-consumers",
  topic: env.CONSUMER_EVENTS_TOPIC ?? "events",
  clickhouseUrl: env.CLICKHOUSE_URL ?? "http://127.0.0.1:8123",
  database: env.CLICKHOUSE_DATABASE ?? "analytics",
  teamId: project.teamId,
  captureUrl,
  token: project.token,
});
monitor.start();

interface Stage {
  rate: number;
  events_per_s: number;
  report: Report;
  ok202: number;
  pass: boolean;
}
const stages: Stage[] = [];
let seq = 0;
for (const rate of rates) {
  process.stdout.write(`  stage ${rate} req/s for ${stageS}s ... `);
  const report = await attack({
    rate,
    durationS: stageS,
    timeoutMs: 10_000,
    name: `capture-${rate}`,
    target: () => {
      const body =
        perRequest === 1
          ? JSON.stringify({ api_key: project.token, ...event(seq++) })
          : JSON.stringify({ api_key: project.token, batch: Array.from({ length: perRequest }, () => event(seq++)) });
      return { method: "POST", url: `${captureUrl}${perRequest === 1 ? "/v1/capture" : "/v1/batch"}`, header: { "Content-Type": ["application/json"] }, body };
    },
  });
  const ok202 = (report.status_codes["202"] ?? 0) / Math.max(1, report.requests);
  const pass = ok202 >= min202 && report.latencies.p99 < p99Limit;
  stages.push({ rate, events_per_s: rate * perRequest, report, ok202, pass });
  console.log(`${pass ? "pass" : "FAIL"}  202 ${(ok202 * 100).toFixed(2)}%  p99 ${report.latencies.p99.toFixed(1)} ms`);
}

process.stdout.write("  waiting for probe events to become queryable ... ");
const pipeline = await monitor.stop(90_000);
console.log("done");

const visibility = [...pipeline.visibilityMs].sort((a, b) => a - b);
const pct = (q: number) => (visibility.length ? visibility[Math.min(visibility.length - 1, Math.floor(q * visibility.length))]! : Number.NaN);
const table = stages.map((s) => ({
  "rate req/s": s.rate,
  "events/s": s.events_per_s,
  requests: s.report.requests,
  "202 %": (s.ok202 * 100).toFixed(3),
  "p50 ms": s.report.latencies.p50.toFixed(1),
  "p95 ms": s.report.latencies.p95.toFixed(1),
  "p99 ms": s.report.latencies.p99.toFixed(1),
  "max ms": s.report.latencies.max.toFixed(1),
  "achieved req/s": s.report.throughput.toFixed(0),
  result: s.pass ? "pass" : "FAIL",
}));
console.table(table);
console.log(
  `pipeline: max lag per partition ${pipeline.maxLag} (${pipeline.lagUnder10k ? "< 10k: pass" : ">= 10k: FAIL"}); ` +
    `capture -> queryable p50 ${pct(0.5).toFixed(0)} ms, p99 ${pct(0.99).toFixed(0)} ms, max ${(visibility.at(-1) ?? Number.NaN).toFixed(0)} ms ` +
    `over ${visibility.length} probes${pipeline.probesLost ? `, ${pipeline.probesLost} never seen` : ""}`,
);

const figures = {
  capture_url: captureUrl,
  stage_s: stageS,
  events_per_request: perRequest,
  criteria: { min_202: min202, p99_ms: p99Limit, max_lag_per_partition: 10_000 },
  stages: stages.map((s) => ({ ...s.report, offered_rate: s.rate, events_per_s: s.events_per_s, ok_202: s.ok202, pass: s.pass })),
  pipeline: {
    max_lag: pipeline.maxLag,
    lag_under_10k: pipeline.lagUnder10k,
    visibility_ms: { p50: pct(0.5), p99: pct(0.99), max: visibility.at(-1) ?? null, probes: visibility.length, lost: pipeline.probesLost },
    samples: pipeline.samples,
  },
};
const path = await writeResult("stress-capture", figures);
const base = path.replace(/\.json$/, "");
const latencyChart = await writeChart(
  `${base}-latency.svg`,
  await lineChart({
    title: "Capture latency vs offered rate",
    xTitle: "offered rate (req/s)",
    yTitle: "latency (ms)",
    logY: true,
    series: (["p50", "p95", "p99", "max"] as const).map((q) => ({ name: q, points: stages.map((s) => [s.rate, Math.max(0.01, s.report.latencies[q])] as [number, number]) })),
  }),
);
const lagChart =
  pipeline.samples.length > 0
    ? await writeChart(
        `${base}-lag.svg`,
        await lineChart({
          title: "Consumer lag during the run",
          xTitle: "seconds",
          yTitle: "messages",
          series: [
            { name: "max lag per partition", points: pipeline.samples.map((s) => [s.t, s.maxLag]) },
            { name: "total lag", points: pipeline.samples.map((s) => [s.t, s.totalLag]) },
          ],
        }),
      )
    : null;
console.log(`results: ${path}\ncharts:  ${latencyChart}${lagChart ? `\n         ${lagChart}` : ""}`);

const failed = stages.some((s) => !s.pass) || !pipeline.lagUnder10k || pipeline.probesLost > 0;
if (failed) console.log("stress-capture: FAIL");
else console.log("stress-capture: pass");
process.exit(failed ? 1 : 0);
