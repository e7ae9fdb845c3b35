/**
 * Consumer benchmark (issue 5): `bun run bench:consumer`.
 *
 *   1. Insert formats on the real ClickHouse through @clickhouse/client-web (and plain fetch as a reference):
 *      100k-row batches, rows/s including encoding, median of several runs, realistic and minimal row shapes.
 *   2. Where one consumer's CPU goes per event (in-process stage costs, bare Kafka consume rate).
 *   3. Throughput of ONE consumer process (apps/consumer/main.ts) from a pre-filled topic, per batch config.
 *   4. A CPU profile of the consumer process (bun --cpu-prof-md) over part of the topic.
 *   5. Visibility latency (broker ack -> row visible to a query) at 1k and 5k events/s, default config.
 *
 * Everything runs against the shared services on 127.0.0.1 without stopping them; the consumer writes into a
 * database of its own (`bench_consumer_<stamp>`, tables created AS analytics.events, dropped at the end) and
 * reads topics of its own (unique names, deleted at the end). CPU used by other processes on the machine is
 * recorded next to every figure. Results: bench/results/consumer-<stamp>.json plus SVG charts beside it.
 *
 * Sizes (environment): BENCH_EVENTS (default 5,000,000: topic size and the default config's run),
 * BENCH_SWEEP_EVENTS (2,000,000: the other configs), BENCH_FORMAT_ROWS (100,000), BENCH_FORMAT_RUNS (5),
 * BENCH_VIS_SECONDS (20), BENCH_PROFILE_EVENTS (1,000,000; 0 = no profile), BENCH_RESULTS_DIR (bench/results),
 * BENCH_PHASES (formats,stages,throughput,profile,visibility: a subset re-measures only those),
 * BENCH_SWEEP_TIMEOUT_S (120) and BENCH_DEFAULT_TIMEOUT_S (300): per-config caps; a capped run reports the rate
 * it reached over what it consumed (`completed: false`).
 */
import { copyFile, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { encodeCapturedEvent } from "../../lib/events/captured-event.ts";
import { Producer } from "../../lib/kafka/producer.ts";
import { startApp } from "../../tests/support/apps.ts";
import { capturedEvent } from "../../tests/support/events.ts";
import { KAFKA, ROOT, uniqueName, uniqueTeamId, waitFor } from "../../tests/support/stack.ts";
import { histogram, lineChart, writeChart } from "../lib/chart.ts";
import { Progress, writeResult } from "../lib/results.ts";
import { chCount, chExec } from "./clickhouse.ts";
import { EventTemplates } from "./events.ts";
import { compareFormats, type FormatFigures, makeRows, rowsFromValues } from "./formats.ts";
import { kafkaPollRate, stageCosts } from "./stages.ts";
import { cpuMeter, findPid, loadAverage } from "./system.ts";
import { type ConsumerConfig, prefill, runConsumer, type ThroughputFigures } from "./throughput.ts";
import { measureVisibility, type VisibilityFigures } from "./visibility.ts";

const env = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d);
const EVENTS = env("BENCH_EVENTS", 5_000_000);
const SWEEP_EVENTS = Math.min(EVENTS, env("BENCH_SWEEP_EVENTS", 2_000_000));
const FORMAT_ROWS = env("BENCH_FORMAT_ROWS", 100_000);
const FORMAT_RUNS = env("BENCH_FORMAT_RUNS", 5);
const VIS_SECONDS = env("BENCH_VIS_SECONDS", 20);
const PROFILE_EVENTS = Math.min(EVENTS, env("BENCH_PROFILE_EVENTS", 1_000_000));
/** Caps so the whole run stays near 15 minutes on a busy machine; a capped run reports the rate it reached. */
const SWEEP_TIMEOUT_S = env("BENCH_SWEEP_TIMEOUT_S", 120);
const DEFAULT_TIMEOUT_S = env("BENCH_DEFAULT_TIMEOUT_S", 300);
/** Phases to run (comma-separated): formats, stages, throughput, profile, visibility; default all. */
const PHASES = new Set((process.env.BENCH_PHASES ?? "formats,stages,throughput,profile,visibility").split(",").map((x) => x.trim()));
const URL_CH = process.env.CLICKHOUSE_URL ?? "http://127.0.0.1:8123";
/** apps/consumer/config.ts defaults. */
const DEFAULTS = { maxRows: 50_000, lingerMs: 1000, maxBytes: 33_554_432 };
const TARGET_EVENTS_PER_S = 100_000;
const TARGET_P99_MS = 5000;

const log = (s: string) => console.error(s);
const progress = new Progress();
const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`;

const stamp = new Date().toISOString().replace(/\.\d{3}Z$/, "").replace(/[-:T]/g, "").toLowerCase();
const db = `bench_consumer_${stamp}`;
const team = uniqueTeamId();
const topic = uniqueName("bench-consumer-events");
const visTopic = uniqueName("bench-consumer-vis");
/** Topics this run created, deleted at the end. */
const topics: string[] = [];

async function backgroundLoad(seconds = 3) {
  const m = cpuMeter({ clickhouse: findPid("clickhouse-server"), kafka: findPid("kafka.Kafka") });
  await Bun.sleep(seconds * 1000);
  return m.stop();
}

async function deleteTopics(names: string[]): Promise<void> {
  const bin = join(ROOT, "infrastructure/kafka/bin/kafka-topics");
  for (const name of names) {
    const p = Bun.spawn([bin, "--bootstrap-server", KAFKA, "--delete", "--topic", name], { stdout: "ignore", stderr: "pipe" });
    if ((await p.exited) !== 0) log(`  could not delete topic ${name}: ${(await new Response(p.stderr).text()).slice(0, 200)}`);
  }
}

/** Runs the default-config consumer with a CPU profiler; returns the markdown profile's text. */
async function profile(): Promise<{ path: string; figures: ThroughputFigures } | null> {
  if (PROFILE_EVENTS <= 0) return null;
  const dir = await mkdtemp(join(tmpdir(), "bench-consumer-prof-"));
  try {
    const figures = await runConsumer({
      url: URL_CH,
      db,
      topic,
      config: { label: "profiled (default config)", env: {}, events: PROFILE_EVENTS, timeoutS: 90 },
      defaults: DEFAULTS,
      log,
      progress,
      extraEnv: { BUN_OPTIONS: `--cpu-prof-md --cpu-prof-dir=${dir}` },
    });
    const files = (await readdir(dir)).filter((f) => f.endsWith(".md"));
    if (files.length === 0) {
      log("  profile: no profile written");
      return null;
    }
    return { path: join(dir, files[0]!), figures };
  } catch (err) {
    log(`  profile failed: ${String(err)}`);
    return null;
  }
}

async function visibility(): Promise<VisibilityFigures[]> {
  const table = `${db}.events`;
  await chExec(URL_CH, `DROP TABLE IF EXISTS ${table}`);
  await chExec(URL_CH, `CREATE TABLE ${table} AS analytics.events`);
  // Create the topic (auto-create on produce) and put a few warm-up events on it.
  const warmTeam = team + 10;
  const p = new Producer({ "bootstrap.servers": KAFKA });
  topics.push(visTopic);
  await p.produceMany(visTopic, Array.from({ length: 120 }, (_, i) => ({ key: `w${i}`, value: encodeCapturedEvent(capturedEvent(warmTeam, i)) })));
  await p.close();
  const app = await startApp("consumer", {
    CONSUMER_EVENTS_TOPIC: visTopic,
    CONSUMER_KAFKA_GROUP_ID: uniqueName("bench-consumer-vis"),
    CONSUMER_KAFKA_BOOTSTRAP_SERVERS: KAFKA,
    CONSUMER_DLQ_TOPIC: `${visTopic}-dlq`,
    CLICKHOUSE_URL: URL_CH,
    CLICKHOUSE_DATABASE: db,
    LOG_LEVEL: "warn",
  });
  const out: VisibilityFigures[] = [];
  try {
    await waitFor("warm-up events visible", 60_000, async () => (await chCount(URL_CH, table)) >= 120);
    for (const [i, rate] of [1000, 5000].entries()) {
      log(`[${elapsed()}] visibility at ${rate} events/s for ${VIS_SECONDS} s`);
      const meter = cpuMeter({ consumer: app.proc.pid, clickhouse: findPid("clickhouse-server"), kafka: findPid("kafka.Kafka") });
      const f = await measureVisibility({ url: URL_CH, table, topic: visTopic, team: team + 20 + i, rate, durationS: VIS_SECONDS, log });
      out.push({ ...f, cpu: meter.stop() } as VisibilityFigures);
      log(`  p50 ${f.p50_ms} ms, p99 ${f.p99_ms} ms, max ${f.max_ms} ms (${f.visible}/${f.produced} visible)`);
    }
  } finally {
    await app.stop();
  }
  return out;
}

function pad(s: string | number, n: number, right = false): string {
  const x = String(s);
  return right ? x.padEnd(n) : x.padStart(n);
}

function fmt(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "-";
  return Math.round(n).toLocaleString("en-US");
}

function printTables(f: {
  formats: { realistic: FormatFigures[]; minimal: FormatFigures[] };
  throughput: ThroughputFigures[];
  visibility: VisibilityFigures[];
  stages: ReturnType<typeof stageCosts> | null;
  kafka_poll_only: Awaited<ReturnType<typeof kafkaPollRate>> | null;
}): void {
  const lines: string[] = [];
  for (const [shape, list] of Object.entries(f.formats)) {
    lines.push(`\nInsert formats, ${shape} rows (${FORMAT_ROWS.toLocaleString("en-US")} rows/insert, median of ${FORMAT_RUNS})`);
    lines.push(`${pad("format", 28, true)} ${pad("via", 27, true)} ${pad("rows/s", 9)} ${pad("total ms", 9)} ${pad("encode", 7)} ${pad("send", 7)} ${pad("MB", 6)} ${pad("vs JSONEachRow", 15)}  same rows`);
    for (const x of list) {
      if (!x.supported) {
        lines.push(`${pad(x.format, 28, true)} ${pad(x.via, 27, true)} unsupported: ${x.error?.slice(0, 90)}`);
        continue;
      }
      lines.push(
        `${pad(x.format, 28, true)} ${pad(x.via, 27, true)} ${pad(fmt(x.rows_per_s), 9)} ${pad(fmt(x.total_ms), 9)} ${pad(fmt(x.encode_ms), 7)} ${pad(fmt(x.send_ms), 7)} ${pad(((x.body_bytes ?? 0) / 1e6).toFixed(0), 6)} ${pad(`${x.vs_jsoneachrow?.toFixed(2)}x`, 15)}  ${x.content_matches_jsoneachrow ?? "n/a"}`,
      );
    }
  }
  if (f.stages) lines.push(`\nConsumer CPU per event (in-process, CPU µs): ${Object.entries(f.stages.cpu_us_per_event).map(([k, v]) => `${k} ${v}`).join(", ")}; total ${f.stages.total_cpu_us_per_event} -> ceiling ${fmt(f.stages.cpu_ceiling_events_per_s)}/s on one thread (wall µs total ${f.stages.total_us_per_event})`);
  if (f.kafka_poll_only) lines.push(`Kafka consume only (lib/kafka Consumer, no processing): ${fmt(f.kafka_poll_only.messages_per_s)} msg/s, ${f.kafka_poll_only.mb_per_s} MB/s`);
  lines.push(`\nThroughput, one consumer process (target >= ${fmt(TARGET_EVENTS_PER_S)} events/s)`);
  lines.push(`${pad("config", 34, true)} ${pad("events", 10)} ${pad("events/s", 9)} ${pad("from start", 10)} ${pad("batch", 7)} ${pad("ins ms", 7)} ${pad("ins%", 5)} ${pad("cons µs/ev", 10)}  cores: consumer/CH/kafka/other`);
  for (const t of f.throughput) {
    lines.push(
      `${pad(t.label, 34, true)} ${pad(fmt(t.events_seen), 10)} ${pad(fmt(t.events_per_s), 9)} ${pad(fmt(t.events_per_s_from_start), 10)} ${pad(fmt(t.mean_batch_rows), 7)} ${pad(fmt(t.mean_insert_ms), 7)} ${pad(`${Math.round(t.insert_time_share * 100)}%`, 5)} ${pad(fmt(t.consumer_cpu_us_per_event), 10)}  ${t.cpu.consumer}/${t.cpu.clickhouse}/${t.cpu.kafka}/${t.cpu.other}`,
    );
  }
  lines.push(`\nVisibility (broker ack -> row visible; default config; target p99 < ${TARGET_P99_MS} ms)`);
  lines.push(`${pad("rate/s", 7)} ${pad("achieved", 9)} ${pad("visible", 9)} ${pad("p50 ms", 7)} ${pad("p90 ms", 7)} ${pad("p99 ms", 7)} ${pad("max ms", 7)}`);
  for (const v of f.visibility) {
    lines.push(`${pad(fmt(v.rate), 7)} ${pad(fmt(v.achieved_rate), 9)} ${pad(`${v.visible}/${v.produced}`, 9)} ${pad(fmt(v.p50_ms), 7)} ${pad(fmt(v.p90_ms), 7)} ${pad(fmt(v.p99_ms), 7)} ${pad(fmt(v.max_ms), 7)}`);
  }
  console.log(lines.join("\n"));
}

async function main(): Promise<void> {
  log(`consumer benchmark: db ${db}, topic ${topic}, team ${team}, ${EVENTS.toLocaleString("en-US")} events (sweep ${SWEEP_EVENTS.toLocaleString("en-US")})`);
  const loadBefore = { load_avg: loadAverage(), ...(await backgroundLoad()) };
  log(`  machine before start: ${loadBefore.machine_busy} cores busy (load ${loadBefore.load_avg.join(" ")})`);
  await chExec(URL_CH, `CREATE DATABASE ${db}`);
  const templates = new EventTemplates(team, 4096, 1);
  const avgBytes = Math.round(templates.averageBytes());
  try {
    // 1. Insert formats.
    let realistic: FormatFigures[] = [];
    let minimal: FormatFigures[] = [];
    if (PHASES.has("formats")) {
      log(`[${elapsed()}] insert formats: realistic rows`);
      realistic = await compareFormats({ url: URL_CH, db, rows: makeRows(team, FORMAT_ROWS), runs: FORMAT_RUNS, log });
      log(`[${elapsed()}] insert formats: minimal rows (tests/support/events.ts shape)`);
      const unusable = new Set(realistic.filter((x) => !x.supported).map((x) => x.format));
      const minimalRows = rowsFromValues(Array.from({ length: FORMAT_ROWS }, (_, i) => encodeCapturedEvent(capturedEvent(team, i))));
      minimal = await compareFormats({ url: URL_CH, db, rows: minimalRows, runs: FORMAT_RUNS, log, skip: (f) => unusable.has(f) });
    }

    // 2. Stage costs.
    if (PHASES.has("stages")) log(`[${elapsed()}] per-event CPU stages`);
    const stages = PHASES.has("stages") ? stageCosts(templates) : null;

    // 3. Pre-fill, then bare Kafka consume rate.
    const needTopic = PHASES.has("throughput") || PHASES.has("profile");
    let fill: Awaited<ReturnType<typeof prefill>> | null = null;
    let pollOnly: Awaited<ReturnType<typeof kafkaPollRate>> | null = null;
    if (needTopic) {
      log(`[${elapsed()}] pre-filling ${topic} with ${EVENTS.toLocaleString("en-US")} events (~${avgBytes} bytes each)`);
      topics.push(topic);
      fill = await prefill(topic, templates, EVENTS, progress);
      log(`  pre-filled in ${fill.seconds} s (${fmt(fill.rate)}/s)`);
      if (PHASES.has("stages")) {
        log(`[${elapsed()}] bare Kafka consume rate`);
        pollOnly = await kafkaPollRate(topic, Math.min(EVENTS, 1_000_000));
      }
    }

    // 4. Throughput per configuration.
    const configs: ConsumerConfig[] = [
      { label: "10k rows / 200 ms", env: { CONSUMER_BATCH_MAX_ROWS: "10000", CONSUMER_BATCH_LINGER_MS: "200", CONSUMER_BATCH_MAX_BYTES: "1073741824" }, events: SWEEP_EVENTS, timeoutS: SWEEP_TIMEOUT_S },
      { label: "default: 50k rows / 1000 ms / 32 MiB", env: {}, events: EVENTS, timeoutS: DEFAULT_TIMEOUT_S },
      { label: "100k rows / 2000 ms", env: { CONSUMER_BATCH_MAX_ROWS: "100000", CONSUMER_BATCH_LINGER_MS: "2000", CONSUMER_BATCH_MAX_BYTES: "1073741824" }, events: SWEEP_EVENTS, timeoutS: SWEEP_TIMEOUT_S },
    ];
    const throughput: ThroughputFigures[] = [];
    for (const config of PHASES.has("throughput") ? configs : []) {
      log(`[${elapsed()}] throughput: ${config.label}, ${config.events.toLocaleString("en-US")} events`);
      const r = await runConsumer({ url: URL_CH, db, topic, config, defaults: DEFAULTS, log, progress });
      log(`  ${fmt(r.events_per_s)} events/s (first->last row), batches of ${fmt(r.mean_batch_rows)}, cores: consumer ${r.cpu.consumer} CH ${r.cpu.clickhouse} kafka ${r.cpu.kafka} other ${r.cpu.other}`);
      throughput.push(r);
    }

    // 5. CPU profile.
    if (PHASES.has("profile")) log(`[${elapsed()}] CPU profile of the consumer (${PROFILE_EVENTS.toLocaleString("en-US")} events)`);
    const prof = PHASES.has("profile") ? await profile() : null;

    // 6. Visibility.
    const vis = PHASES.has("visibility") ? await visibility() : [];

    const loadAfter = { load_avg: loadAverage(), ...(await backgroundLoad()) };
    const best = throughput.length ? Math.max(...throughput.map((t) => t.events_per_s)) : null;
    const figures = {
      description:
        "Consumer benchmark (issue 5): insert formats on ClickHouse 18.16 via @clickhouse/client-web, one consumer process's throughput per batch config, visibility latency. CPU columns are average cores used over each measurement; 'other' is everything else on this shared 2-core machine (other engineers' tests).",
      phases: [...PHASES],
      sizes: { sweep_timeout_s: SWEEP_TIMEOUT_S, default_timeout_s: DEFAULT_TIMEOUT_S, events: EVENTS, sweep_events: SWEEP_EVENTS, format_rows: FORMAT_ROWS, format_runs: FORMAT_RUNS, visibility_seconds: VIS_SECONDS, profile_events: PROFILE_EVENTS },
      event_shape: { avg_kafka_value_bytes: avgBytes, properties: "~23 web-SDK properties (bench/consumer/events.ts)" },
      machine_load: { before: loadBefore, after: loadAfter },
      targets: { events_per_s: TARGET_EVENTS_PER_S, visibility_p99_ms: TARGET_P99_MS },
      verdict: {
        best_events_per_s: best,
        throughput_target_met: best === null ? null : best >= TARGET_EVENTS_PER_S,
        visibility_p99_ms: Object.fromEntries(vis.map((v) => [v.rate, v.p99_ms])),
        visibility_target_met: vis.length > 0 && vis.every((v) => v.p99_ms < TARGET_P99_MS && v.visible === v.produced),
      },
      formats: { realistic, minimal },
      stages,
      kafka_poll_only: pollOnly,
      prefill: fill,
      throughput: throughput.map(({ series, ...t }) => ({ ...t, series: thin(series) })),
      profile: prof
        ? {
            note: "bun --cpu-prof-md samples wall-clock stacks of the consumer's JS thread; on a machine whose cores are taken by other processes, time spent descheduled is charged to whatever frame was running, so read shares as rough.",
            events_per_s: prof.figures.events_per_s,
            events: prof.figures.events_seen,
            top: /\*\*Top 10:\*\* (.*)/.exec(await Bun.file(prof.path).text())?.[1] ?? null,
            file: null as string | null,
          }
        : null,
      visibility: vis.map(({ samples, ...v }) => ({ ...v, samples_ms: thinSamples(samples) })),
    };
    const path = await writeResult("consumer", figures, process.env.BENCH_RESULTS_DIR ? { dir: process.env.BENCH_RESULTS_DIR } : {});
    const base = path.replace(/\.json$/, "");
    if (prof) {
      await copyFile(prof.path, `${base}-cpu-profile.md`);
      figures.profile!.file = basename(`${base}-cpu-profile.md`);
      await Bun.write(path, `${JSON.stringify({ ...(await Bun.file(path).json()), figures }, null, 2)}\n`);
    }
    const charts: string[] = [];
    if (throughput.length) charts.push(
      await writeChart(
        `${base}-throughput.svg`,
        await lineChart({
          title: `One consumer process: events/s by batch size (target ${fmt(TARGET_EVENTS_PER_S)}/s)`,
          xTitle: "mean rows per ClickHouse insert",
          yTitle: "events/s",
          series: [
            { name: "first -> last row visible", points: throughput.map((t) => [t.mean_batch_rows, t.events_per_s]) },
            { name: "from process start", points: throughput.map((t) => [t.mean_batch_rows, t.events_per_s_from_start]) },
          ],
        }),
      ),
    );
    if (throughput.length) charts.push(
      await writeChart(
        `${base}-progress.svg`,
        await lineChart({
          title: "Rows visible in ClickHouse over time, per config",
          xTitle: "seconds since the consumer process started",
          yTitle: "rows visible",
          series: throughput.map((t) => ({ name: t.label, points: thin(t.series) })),
        }),
      ),
    );
    for (const v of vis) {
      if (v.samples.length === 0) continue;
      charts.push(
        await writeChart(
          `${base}-visibility-${v.rate}.svg`,
          await histogram({
            title: `Visibility at ${fmt(v.rate)} events/s (ack -> visible): p50 ${fmt(v.p50_ms)} ms, p99 ${fmt(v.p99_ms)} ms`,
            values: v.samples,
            bins: 40,
            xTitle: "ms from broker ack to row visible",
            yTitle: "events",
          }),
        ),
      );
    }
    printTables({ formats: { realistic, minimal }, throughput, visibility: vis, stages, kafka_poll_only: pollOnly });
    console.log(`\nresults: ${path}`);
    for (const c of charts) console.log(`chart:   ${c}`);
    if (prof) console.log(`profile: ${base}-cpu-profile.md`);
    console.log(`total time ${elapsed()}; machine load before ${loadBefore.machine_busy} cores busy, after ${loadAfter.machine_busy}`);
  } finally {
    await chExec(URL_CH, `DROP DATABASE IF EXISTS ${db}`).catch((e) => log(`  drop ${db}: ${String(e)}`));
    await deleteTopics(topics).catch(() => {});
  }
}

function thin(series: [number, number][], max = 400): [number, number][] {
  if (series.length <= max) return series;
  const step = series.length / max;
  const out: [number, number][] = [];
  for (let i = 0; i < max; i++) out.push(series[Math.floor(i * step)]!);
  out.push(series[series.length - 1]!);
  return out;
}

/** Every sample would make the JSON huge at 5k/s; keep a regular subsample (sorted) for later histograms. */
function thinSamples(xs: number[], max = 5000): number[] {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length <= max) return s;
  const step = s.length / max;
  return Array.from({ length: max }, (_, i) => s[Math.floor(i * step)]!);
}

await main();
process.exit(0);
