/**
 * `make bench-cluster`: the capture and consumer benchmarks against the running cluster (`make cluster-up`),
 * with the CPU each process spent, so runbooks/scaling.md can size machines from CPU cost per event.
 *
 *   1. capture  - closed loop: WORKERS (default 32) connections each sending its next 100-event /v1/batch as soon
 *                 as the last was answered (202), for STAGE_S (default 20) seconds, through the shared capture port
 *                 (two processes, SO_REUSEPORT) into the 3-broker cluster (acks=all, min.insync.replicas=2).
 *                 The consumers are stopped meanwhile, so this stage measures capture + Kafka alone.
 *   2. consumer - the consumers start on the topic the capture stage filled and drain it into the Distributed
 *                 table; events/s from their start until every event is queryable (as bench/consumer's
 *                 pre-filled topic run), with ClickHouse's CPU counted on all four nodes. The consumers' CPU
 *                 includes their start-up (they start at the beginning of this stage).
 *
 * CPU: utime + stime from /proc/<pid>/stat of every cluster process, before and after each stage.
 * Writes bench/results/cluster-<time>.json.
 */
import { readFileSync } from "node:fs";
import { writeResult } from "./lib/results.ts";
import { waitFor } from "../tests/support/stack.ts";
import { chCount, cluster, percentile, requireCluster, testProject } from "../tests/cluster/support.ts";

const STAGE_S = Number(process.env.STAGE_S ?? 20);
const WORKERS = Number(process.env.WORKERS ?? 32);
const BATCH = 100;
const TICKS = 100; // USER_HZ on Linux

const EVENTS = ["$pageview", "$pageview", "$autocapture", "$pageleave", "signup", "purchase"];
const BROWSERS = ["Chrome", "Safari", "Firefox", "Microsoft Edge"];
const PATHS = ["/", "/pricing", "/docs/getting-started", "/blog/how-we-scaled-ingestion", "/signup", "/app/dashboard"];

/** About twenty properties, the shape a web SDK sends (as bench/consumer/events.ts), so costs are comparable. */
function webProperties(n: number): Record<string, unknown> {
  const path = PATHS[n % PATHS.length]!;
  return {
    $browser: BROWSERS[n % BROWSERS.length],
    $browser_version: 120 + (n % 7),
    $os: n % 3 ? "Windows" : "Mac OS X",
    $os_version: "10.0",
    $device_type: n % 4 ? "Desktop" : "Mobile",
    $screen_width: 1920,
    $screen_height: 1080,
    $viewport_width: 1512,
    $viewport_height: 860,
    $current_url: `https://example.com${path}?utm_source=newsletter`,
    $host: "example.com",
    $pathname: path,
    $referrer: n % 2 ? "https://www.google.com/" : "$direct",
    $referring_domain: n % 2 ? "www.google.com" : "$direct",
    $session_id: `0190d7a3-${(n % 997).toString(16).padStart(4, "0")}-7000-8000-000000000000`,
    $window_id: `0190d7a3-${(n % 991).toString(16).padStart(4, "0")}-7000-8000-000000000001`,
    $lib: "web",
    $lib_version: "1.160.0",
    $active_feature_flags: ["new-onboarding", "pricing-v3"],
    ...(n % 6 === 5 ? { amount: (n % 500) + 0.99 } : {}),
  };
}

const env = await requireCluster();
const state = env.CLUSTER_STATE!;
const PROCS = ["capture-1", "capture-2", "consumer-1", "consumer-2", "query", "kafka-1", "kafka-2", "kafka-3", "zookeeper", "ch-1", "ch-2", "ch-3", "ch-4"];

function cpuSeconds(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of PROCS) {
    try {
      const pid = readFileSync(`${state}/run/${p}.pid`, "utf8").trim();
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out[p] = (Number(f[11]) + Number(f[12])) / TICKS; // fields 14, 15 of stat(5)
    } catch {
      out[p] = Number.NaN;
    }
  }
  return out;
}

/** CPU seconds spent between two readings; a process started in between (the consumers) counts from 0. */
function delta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(PROCS.map((p) => [p, Math.round((b[p]! - (Number.isNaN(a[p]!) ? 0 : a[p]!)) * 100) / 100]));
}

/** CPU seconds per component, summed over its processes. */
function byComponent(d: Record<string, number>): Record<string, number> {
  const sum = (prefix: string) => Math.round(PROCS.filter((p) => p.startsWith(prefix)).reduce((s, p) => s + (d[p] || 0), 0) * 100) / 100;
  return { capture: sum("capture"), kafka: sum("kafka"), consumer: sum("consumer"), clickhouse: sum("ch-"), zookeeper: sum("zookeeper") };
}

const project = await testProject("cluster bench");
try {
  await cluster("stop", "consumer-1", "consumer-2");

  // ---- 1. capture ----
  const latencies: number[] = [];
  let events = 0;
  let non202 = 0;
  let seq = 0;
  const body = () =>
    JSON.stringify({
      api_key: project.token,
      batch: Array.from({ length: BATCH }, () => {
        const n = seq++;
        return { event: EVENTS[n % EVENTS.length], distinct_id: `bench-${n % 5000}`, properties: webProperties(n) };
      }),
    });
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const until = t0 + STAGE_S * 1000;
  await Promise.all(
    Array.from({ length: WORKERS }, async () => {
      while (performance.now() < until) {
        const s = performance.now();
        const res = await fetch(`${env.CLUSTER_CAPTURE}/v1/batch`, { method: "POST", headers: { "content-type": "application/json" }, body: body() }).catch(() => null);
        latencies.push(performance.now() - s);
        if (res?.status === 202) events += BATCH;
        else non202++;
        await res?.arrayBuffer();
      }
    }),
  );
  const captureS = (performance.now() - t0) / 1000;
  const captureCpu = delta(cpu0, cpuSeconds());
  const capture = {
    workers: WORKERS,
    batch: BATCH,
    seconds: Math.round(captureS * 10) / 10,
    events_per_s: Math.round(events / captureS),
    events,
    non_202: non202,
    p50_ms: Math.round(percentile(latencies, 50)),
    p99_ms: Math.round(percentile(latencies, 99)),
    cpu_s: captureCpu,
    cpu_s_by_component: byComponent(captureCpu),
  };
  console.log("capture", JSON.stringify(capture));

  // ---- 2. consumer: drain what stage 1 left in Kafka ----
  const count = () => chCount(env.CLUSTER_CH_1!, `SELECT count() FROM events_distributed WHERE team_id = ${project.id}`);
  const cpu1 = cpuSeconds();
  const t1 = performance.now();
  await cluster("start", "consumer-1", "consumer-2");
  await waitFor("the consumers to store every captured event", 900_000, async () => (await count()) >= events, 500);
  const drainS = (performance.now() - t1) / 1000;
  const drainCpu = delta(cpu1, cpuSeconds());
  const consumer = {
    events,
    seconds: Math.round(drainS * 10) / 10,
    events_per_s: Math.round(events / drainS),
    cpu_s: drainCpu,
    cpu_s_by_component: byComponent(drainCpu),
  };
  console.log("consumer", JSON.stringify(consumer));

  // CPU cost per event, microseconds of one core, from the stage where each component did its work.
  const cap = byComponent(captureCpu);
  const con = byComponent(drainCpu);
  const perEvent = (s: number) => Math.round((s / events) * 1e6 * 10) / 10;
  const cpu_us_per_event = {
    capture: perEvent(cap.capture!),
    kafka: perEvent(cap.kafka! + con.kafka!),
    consumer: perEvent(con.consumer!),
    clickhouse: perEvent(con.clickhouse! + cap.clickhouse!),
    zookeeper: perEvent(con.zookeeper! + cap.zookeeper!),
  };
  console.log("cpu_us_per_event", JSON.stringify(cpu_us_per_event));
  const path = await writeResult("cluster", { layout: "3 Kafka KRaft nodes (RF 3, min.insync.replicas 2), ClickHouse 2 shards x 2 replicas + ZooKeeper, 2 captures, 2 consumers", capture, consumer, cpu_us_per_event }, { clickhouseUrl: env.CLUSTER_CH_1! });
  console.log(`wrote ${path}`);
} finally {
  await cluster("start", "consumer-1", "consumer-2").catch(() => {});
  // The bench's rows are not kept: one mutation per shard.
  for (const url of [env.CLUSTER_CH_1, env.CLUSTER_CH_3]) {
    await fetch(`${url}/?database=analytics`, { method: "POST", body: `ALTER TABLE events DELETE WHERE team_id = ${project.id}` }).catch(() => {});
  }
  await project.drop();
}
