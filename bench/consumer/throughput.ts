/**
 * Throughput of one consumer process: a topic pre-filled with realistic CapturedEvents, then one
 * `apps/consumer/main.ts` per configuration (fresh group, fresh `events` table in the benchmark's own database),
 * events/s from the first to the last row visible in ClickHouse (count() polled every 200 ms).
 */
import { Producer } from "../../lib/kafka/producer.ts";
import { startApp } from "../../tests/support/apps.ts";
import { KAFKA, uniqueName } from "../../tests/support/stack.ts";
import { metricValue } from "../lib/prometheus.ts";
import type { Progress } from "../lib/results.ts";
import { chCount, chExec } from "./clickhouse.ts";
import { EventTemplates } from "./events.ts";
import { cpuMeter, type CpuShare, findPid } from "./system.ts";

/** Produces `n` events from `templates` to `topic`, keeping several 10k-message batches in flight. */
export async function prefill(topic: string, templates: EventTemplates, n: number, progress?: Progress): Promise<{ seconds: number; rate: number }> {
  const producer = new Producer({ "bootstrap.servers": KAFKA });
  const t0 = performance.now();
  const chunk = 10_000;
  const window = 12;
  const inflight: Promise<unknown>[] = [];
  try {
    for (let start = 0; start < n; start += chunk) {
      const msgs = [];
      for (let i = start; i < Math.min(n, start + chunk); i++) msgs.push(templates.take());
      inflight.push(producer.produceMany(topic, msgs));
      if (inflight.length >= window) await inflight.shift();
      progress?.update("prefill", start + msgs.length, n);
    }
    await Promise.all(inflight);
  } finally {
    await producer.close(60_000);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { seconds: Math.round(seconds * 10) / 10, rate: Math.round(n / seconds) };
}

export interface ConsumerConfig {
  label: string;
  /** Env for the consumer; omitted variables take the app's defaults. */
  env: Record<string, string>;
  /** Rows to wait for. */
  events: number;
  /** Give up after this long (the rate is then computed from what was seen). */
  timeoutS: number;
}

export interface ThroughputFigures {
  label: string;
  max_rows: number;
  linger_ms: number;
  max_bytes: number;
  target_events: number;
  events_seen: number;
  completed: boolean;
  /** (rows at the last poll - rows at the first non-empty poll) / time between those polls. */
  events_per_s: number;
  /** Rows / time from starting the process (includes startup and group join). */
  events_per_s_from_start: number;
  startup_to_first_row_s: number;
  first_to_last_s: number;
  inserts: number;
  mean_batch_rows: number;
  /** Share of the run (process start to last row) the ingest loop spent awaiting ClickHouse inserts. */
  insert_time_share: number;
  mean_insert_ms: number;
  cpu: CpuShare;
  /** CPU microseconds per event: consumer process, and ClickHouse server (shared with other users' queries). */
  consumer_cpu_us_per_event: number;
  clickhouse_cpu_us_per_event: number;
  /** [seconds since start, rows visible]. */
  series: [number, number][];
}

export async function runConsumer(opts: {
  url: string;
  db: string;
  topic: string;
  config: ConsumerConfig;
  defaults: { maxRows: number; lingerMs: number; maxBytes: number };
  log: (s: string) => void;
  progress?: Progress;
  /** Extra environment (BUN_OPTIONS for a CPU profile). */
  extraEnv?: Record<string, string>;
}): Promise<ThroughputFigures> {
  const { url, db, topic, config, log } = opts;
  await chExec(url, `DROP TABLE IF EXISTS ${db}.events`);
  await chExec(url, `CREATE TABLE ${db}.events AS analytics.events`);
  const table = `${db}.events`;
  const group = uniqueName("bench-consumer");
  const env = {
    CONSUMER_EVENTS_TOPIC: topic,
    CONSUMER_KAFKA_GROUP_ID: group,
    CONSUMER_KAFKA_BOOTSTRAP_SERVERS: KAFKA,
    CONSUMER_DLQ_TOPIC: `${topic}-dlq`,
    CLICKHOUSE_URL: url,
    CLICKHOUSE_DATABASE: db,
    CONSUMER_LAG_INTERVAL_MS: "5000",
    LOG_LEVEL: "warn",
    ...config.env,
    ...opts.extraEnv,
  };
  const started = performance.now();
  const app = await startApp("consumer", env);
  const meter = cpuMeter({ consumer: app.proc.pid, clickhouse: findPid("clickhouse-server"), kafka: findPid("kafka.Kafka") });
  const series: [number, number][] = [];
  let first: { t: number; n: number } | null = null;
  let last = { t: 0, n: 0 };
  let completed = false;
  let cpu: CpuShare | undefined;
  let metrics = "";
  try {
    const deadline = started + config.timeoutS * 1000;
    for (;;) {
      const n = await chCount(url, table);
      const t = performance.now();
      series.push([Math.round(t - started) / 1000, n]);
      if (n > 0 && !first) first = { t, n };
      if (n > last.n) last = { t, n };
      opts.progress?.update(`consume ${config.label}`, Math.min(n, config.events), config.events);
      if (n >= config.events) {
        completed = true;
        break;
      }
      if (t > deadline) break;
      if (app.proc.exitCode !== null) throw new Error(`consumer exited with ${app.proc.exitCode}:\n${app.output().slice(-3000)}`);
      await Bun.sleep(200);
    }
  } finally {
    cpu = meter.stop();
    metrics = await fetch(`${app.url}/metrics`).then((r) => r.text()).catch(() => "");
    const code = await app.stop();
    if (code !== 0) log(`  consumer ${config.label} exited with ${code}`);
  }
  if (!completed) log(`  ${config.label}: timed out after ${config.timeoutS} s with ${last.n} of ${config.events} rows`);
  const windowS = first && last.t > first.t ? (last.t - first.t) / 1000 : Number.NaN;
  const inserts = metricValue(metrics, "consumer_insert_duration_seconds_count");
  const insertSum = metricValue(metrics, "consumer_insert_duration_seconds_sum");
  const rowsSum = metricValue(metrics, "consumer_batch_rows_sum");
  const env2 = { ...config.env };
  return {
    label: config.label,
    max_rows: Number(env2.CONSUMER_BATCH_MAX_ROWS ?? opts.defaults.maxRows),
    linger_ms: Number(env2.CONSUMER_BATCH_LINGER_MS ?? opts.defaults.lingerMs),
    max_bytes: Number(env2.CONSUMER_BATCH_MAX_BYTES ?? opts.defaults.maxBytes),
    target_events: config.events,
    events_seen: last.n,
    completed,
    events_per_s: first ? Math.round((last.n - first.n) / windowS) : 0,
    events_per_s_from_start: Math.round(last.n / ((last.t - started) / 1000)),
    startup_to_first_row_s: first ? Math.round((first.t - started) / 100) / 10 : Number.NaN,
    first_to_last_s: Math.round(windowS * 10) / 10,
    inserts,
    mean_batch_rows: Math.round(rowsSum / inserts),
    insert_time_share: Math.round((insertSum / ((last.t - started) / 1000)) * 100) / 100,
    mean_insert_ms: Math.round((insertSum / inserts) * 1000),
    cpu: cpu!,
    consumer_cpu_us_per_event: Math.round(((cpu!.consumer ?? Number.NaN) * cpu!.wall_s * 1e6) / last.n),
    clickhouse_cpu_us_per_event: Math.round(((cpu!.clickhouse ?? Number.NaN) * cpu!.wall_s * 1e6) / last.n),
    series,
  };
}
