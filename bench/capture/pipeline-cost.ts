/**
 * `bun bench/capture/pipeline-cost.ts [label]`: CPU cost of capture's request handling in-process (Hono app,
 * every pipeline step, an in-memory sink that drops what it gets): no network, no Kafka, so what is measured is
 * decode -> validate -> normalize -> encode and nothing else. Payloads: a posthog-js-like event, the same with
 * emoji, the same as Python's json.dumps writes it (every non-ASCII character as a \u escape), a lone surrogate,
 * and a 100-event batch. Prints microseconds per request, of wall time and of this process's CPU time (the CPU
 * figure is the one to compare on a shared machine: time spent descheduled does not count), and writes
 * bench/results/capture-pipeline-<time>.json.
 * ROUNDS (default 5) rounds of ITERATIONS (default 4000) requests each; the median round is reported. The
 * surrogate check (well-formed-json.ts) is also timed alone on each body, so its share is visible without the
 * noise of two whole runs.
 */
import { Registry } from "prom-client";
import { createCaptureApp } from "../../apps/capture/capture-app.ts";
import { createCaptureMetrics } from "../../apps/capture/capture-metrics.ts";
import type { EventSink } from "../../apps/capture/event-sink.ts";
import { createLogger } from "../../lib/log/logger.ts";
import { ProjectResolver } from "../../lib/projects/project-resolver.ts";
import { wellFormedJsonText } from "../../apps/capture/well-formed-json.ts";
import { writeResult } from "../lib/results.ts";

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const ITERATIONS = Number(process.env.ITERATIONS ?? 4000);
const TOKEN = "phc_benchtokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

const dropSink: EventSink = {
  publish: async () => {},
  queueDepth: () => 0,
  ping: async () => {},
  close: async () => {},
};

const app = createCaptureApp({
  limits: { maxEventsPerRequest: 10_000, maxEventBytes: 1_000_000 },
  maxRequestBytes: 2 * 1024 * 1024,
  maxBatchBytes: 20 * 1024 * 1024,
  projects: new ProjectResolver({
    source: { findByToken: async () => ({ id: 1, name: "bench", token: TOKEN }) },
    redis: null,
    ttlMs: 3_600_000,
    redisTtlMs: 3_600_000,
    negativeTtlMs: 10_000,
    capacity: 10,
  }),
  rateLimit: null,
  sink: dropSink,
  topics: { events: "events", overflow: "events_overflow" },
  produceTimeoutMs: 5000,
  retryAfterS: 5,
  captureIp: true,
  trustProxy: false,
  newUuid: (ms) => Bun.randomUUIDv7(undefined, ms),
  metrics: createCaptureMetrics(new Registry(), () => 0),
  logger: createLogger("bench", "silent"),
});

function event(i: number, text: string): Record<string, unknown> {
  return {
    event: "$pageview",
    distinct_id: `user-${i}`,
    uuid: crypto.randomUUID(),
    timestamp: new Date(Date.now() - 1000).toISOString(),
    properties: {
      $current_url: `https://example.com/docs/page-${i}?q=${text}`,
      $browser: "Chrome",
      $browser_version: 131,
      $os: "Mac OS X",
      $screen_width: 1920,
      $lib: "web",
      $lib_version: "1.200.0",
      title: text,
      $set: { plan: "pro", name: text },
      nested: { a: [1, 2, { b: text }] },
    },
  };
}

const asciiEscaped = (json: string) => json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

const payloads: Record<string, { path: string; body: string }> = {
  single_ascii: { path: "/e", body: JSON.stringify({ api_key: TOKEN, ...event(1, "Hello world, a plain title") }) },
  single_emoji: { path: "/e", body: JSON.stringify({ api_key: TOKEN, ...event(2, "Héllo wörld 😀 日本語 🎉") }) },
  single_escaped: { path: "/e", body: asciiEscaped(JSON.stringify({ api_key: TOKEN, ...event(3, "Héllo wörld 😀 日本語 🎉") })) },
  single_lone_surrogate: { path: "/e", body: JSON.stringify({ api_key: TOKEN, ...event(4, "Hi \ud83d") }) },
  batch_100: {
    path: "/batch",
    body: JSON.stringify({ api_key: TOKEN, batch: Array.from({ length: 100 }, (_, i) => event(i, i % 10 === 0 ? "Héllo 😀" : "plain title")) }),
  },
};

interface Round {
  wallUs: number;
  cpuUs: number;
}

async function round(path: string, body: string): Promise<Round> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  for (let i = 0; i < ITERATIONS; i++) {
    const res = await app.request(path, { method: "POST", body, headers: { "content-type": "application/json" } });
    if (res.status >= 300) throw new Error(`${path} answered ${res.status}: ${await res.text()}`);
  }
  const used = process.cpuUsage(cpu);
  return { wallUs: ((performance.now() - started) * 1000) / ITERATIONS, cpuUs: (used.user + used.system) / ITERATIONS };
}

const label = process.argv[2] ?? "run";
const entries = Object.entries(payloads);
for (const [, p] of entries) await round(p.path, p.body); // warm-up: every path compiled before anything is timed
// Rounds interleave the payloads, so a noisy neighbour on a shared machine spreads over all of them.
const rounds = new Map<string, Round[]>(entries.map(([name]) => [name, []]));
for (let r = 0; r < ROUNDS; r++) for (const [name, p] of entries) rounds.get(name)!.push(await round(p.path, p.body));
function surrogateCheckUs(body: string): number {
  const n = ITERATIONS * 25;
  let keep = 0;
  const started = performance.now();
  for (let i = 0; i < n; i++) keep += wellFormedJsonText(body).length;
  if (keep === 0) throw new Error("unreachable");
  return ((performance.now() - started) * 1000) / n;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const figures: Record<string, { us_per_request: number; cpu_us_per_request: number; rounds_us: number[]; rounds_cpu_us: number[]; surrogate_check_us: number; body_bytes: number }> = {};
for (const [name, p] of entries) {
  const list = rounds.get(name)!;
  const wall = median(list.map((r) => r.wallUs));
  const cpu = median(list.map((r) => r.cpuUs));
  const check = surrogateCheckUs(p.body);
  figures[name] = {
    us_per_request: Number(wall.toFixed(2)),
    cpu_us_per_request: Number(cpu.toFixed(2)),
    rounds_us: list.map((r) => Number(r.wallUs.toFixed(2))),
    rounds_cpu_us: list.map((r) => Number(r.cpuUs.toFixed(2))),
    surrogate_check_us: Number(check.toFixed(3)),
    body_bytes: Buffer.byteLength(p.body),
  };
  console.log(
    `${name.padEnd(22)} wall ${wall.toFixed(1).padStart(7)} us  cpu ${cpu.toFixed(1).padStart(7)} us/request  surrogate check ${check.toFixed(3).padStart(6)} us  (${figures[name]!.body_bytes} bytes)`,
  );
}
if (process.env.BENCH_NO_WRITE !== "1") {
  console.log(await writeResult("capture-pipeline", { label, rounds: ROUNDS, iterations: ITERATIONS, payloads: figures }));
}
