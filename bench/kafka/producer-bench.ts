/**
 * `bun run bench:kafka`: Kafka client throughput and delivery-ack latency, ours (librdkafka through bun:ffi) vs
 * @platformatic/kafka and kafkajs (what a Bun user would pick instead), same broker, same run, acks=all.
 *
 * Producers: 200-byte JSON values keyed by 100,000 distinct ids.
 *  - throughput: as fast as each client goes, batches of 1,000 handed over with at most 50,000 messages
 *    outstanding; messages/s counted to the last acknowledgement, per-message ack latency (for batch APIs every
 *    message of a batch gets the batch's latency);
 *  - fixed rate: 5,000 messages/s offered one by one for 3 s (the capture path: one event, one ack); latency.
 * Consumers (consumer-bench.ts): each reads the same uncompressed topic from the beginning with a fresh group.
 * Prints a table with ratios against the best alternative and writes bench/results/kafka-<timestamp>.json.
 *
 *   KAFKA_BOOTSTRAP_SERVERS (127.0.0.1:9092)   BENCH_KAFKA_SCALE (1.0: multiplies every message count)
 */
import { loadavg } from "node:os";
import { join } from "node:path";
import { librdkafkaVersion } from "../../lib/kafka/librdkafka.ts";
import { Producer } from "../../lib/kafka/producer.ts";
import { writeResult } from "../lib/results.ts";
import {
  type BenchProducer,
  kafkajsConsumer,
  kafkajsProducer,
  type Msg,
  oursConsumer,
  oursProducer,
  platformaticConsumer,
  platformaticProducer,
  useTopic,
} from "./clients.ts";
import { type ConsumerFigures, runConsumer } from "./consumer-bench.ts";

const BOOTSTRAP = process.env.KAFKA_BOOTSTRAP_SERVERS ?? "127.0.0.1:9092";
const SCALE = Number(process.env.BENCH_KAFKA_SCALE ?? 1);
const KEYS = 100_000;
const VALUE_BYTES = 200;
const BATCH = 1000;
const MAX_OUTSTANDING = 50_000;
const RATE = 5000;
const RATE_SECONDS = 3;
const PHASE_BUDGET_MS = 25_000;
const stamp = Date.now().toString(36);

// ---- the messages: a pool of 200,000, cycled ----

function makePool(size: number): Msg[] {
  const pool: Msg[] = new Array(size);
  let seed = 42;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < size; i++) {
    const id = Math.floor(rnd() * KEYS);
    const head = `{"event":"$pageview","distinct_id":"user-${id}","uuid":"${crypto.randomUUID()}","timestamp":${1_780_000_000_000 + i},"properties":{"$current_url":"https://example.com/p/${i % 977}","pad":"`;
    const value = `${head}${"x".repeat(Math.max(0, VALUE_BYTES - head.length - 3))}"}}`;
    pool[i] = { key: `user-${id}`, value };
  }
  return pool;
}
const pool = makePool(200_000);
if (pool.some((m) => Buffer.byteLength(m.value) !== VALUE_BYTES)) throw new Error("pool values are not 200 bytes");
let cursor = 0;
function nextBatch(n: number): Msg[] {
  const out = new Array<Msg>(n);
  for (let i = 0; i < n; i++) {
    out[i] = pool[cursor]!;
    cursor = (cursor + 1) % pool.length;
  }
  return out;
}

// ---- measurement helpers ----

export interface Latency {
  p50: number;
  p99: number;
  max: number;
}
export function percentiles(samples: Float64Array): Latency {
  if (samples.length === 0) return { p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
  const s = Float64Array.from(samples).sort();
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { p50: round(at(0.5)), p99: round(at(0.99)), max: round(s[s.length - 1]!) };
}
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

interface ThroughputFigures {
  client: string;
  messages: number;
  errors: number;
  firstError?: string;
  seconds: number;
  msgPerSec: number;
  latencyMs: Latency;
}

async function throughput(p: BenchProducer, count: number): Promise<ThroughputFigures> {
  const lat = new Float64Array(count);
  let filled = 0;
  let outstanding = 0;
  let errors = 0;
  let firstError: string | undefined;
  let wake: (() => void) | null = null;
  let lastAck = 0;
  const all: Promise<unknown>[] = [];
  const start = performance.now();
  let sent = 0;
  while (sent < count && performance.now() - start < PHASE_BUDGET_MS) {
    while (outstanding >= MAX_OUTSTANDING) await new Promise<void>((r) => (wake = r));
    const n = Math.min(BATCH, count - sent);
    const t0 = performance.now();
    for (const ack of p.send(nextBatch(n))) {
      outstanding += ack.count;
      all.push(
        ack.promise.then(
          () => {
            const now = performance.now();
            lastAck = now;
            for (let i = 0; i < ack.count; i++) lat[filled++] = now - t0;
          },
          (err: unknown) => {
            errors += ack.count;
            firstError ??= String(err);
          },
        ).finally(() => {
          outstanding -= ack.count;
          const w = wake;
          wake = null;
          w?.();
        }),
      );
    }
    sent += n;
    // Give timers and sockets a turn every 10 batches, so no client is starved of its I/O between batches.
    if ((sent / BATCH) % 10 === 0) await Bun.sleep(0);
  }
  await Promise.all(all);
  const seconds = (lastAck - start) / 1000;
  return { client: p.name, messages: filled, errors, firstError, seconds: round(seconds, 3), msgPerSec: Math.round(filled / seconds), latencyMs: percentiles(lat.subarray(0, filled)) };
}

interface RateFigures {
  client: string;
  offeredPerSec: number;
  offered: number;
  acked: number;
  errors: number;
  latencyMs: Latency;
}

async function fixedRate(p: BenchProducer): Promise<RateFigures> {
  const total = RATE * RATE_SECONDS;
  const lat = new Float64Array(total);
  let filled = 0;
  let errors = 0;
  const all: Promise<unknown>[] = [];
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * RATE) / 1000));
    for (; sent < due; sent++) {
      const t0 = performance.now();
      all.push(
        p.sendOne(pool[sent % pool.length]!).then(
          () => (lat[filled++] = performance.now() - t0),
          () => errors++,
        ),
      );
    }
    await Bun.sleep(1);
  }
  await Promise.race([Promise.all(all), Bun.sleep(15_000)]);
  return { client: p.name, offeredPerSec: RATE, offered: total, acked: filled, errors, latencyMs: percentiles(lat.subarray(0, filled)) };
}

// ---- the run ----

async function main(): Promise<void> {
  const n = (x: number) => Math.round(x * SCALE);
  const load0 = loadavg();
  console.log(`kafka bench: broker ${BOOTSTRAP}, librdkafka ${librdkafkaVersion()}, Bun ${Bun.version}, load ${load0.map((x) => x.toFixed(2)).join(" ")}`);

  const producers: { make: () => BenchProducer; count: number; rate: boolean; alt: boolean }[] = [
    { make: () => oursProducer(BOOTSTRAP, "produceMany"), count: n(1_000_000), rate: false, alt: false },
    { make: () => oursProducer(BOOTSTRAP, "produce"), count: n(600_000), rate: true, alt: false },
    { make: () => oursProducer(BOOTSTRAP, "produceMany", { "compression.type": "none" }, ", no compression"), count: n(500_000), rate: false, alt: false },
    { make: () => platformaticProducer(BOOTSTRAP), count: n(300_000), rate: true, alt: true },
    { make: () => kafkajsProducer(BOOTSTRAP, true), count: n(200_000), rate: true, alt: true },
  ];

  // One fresh topic per producer, created (auto-create, 12 partitions) before any clock starts.
  const topics = producers.map((_, i) => `bench-kafka-${stamp}-${i}`);
  const creator = new Producer({ "bootstrap.servers": BOOTSTRAP });
  await Promise.all(topics.map((t) => creator.produce(t, "create", "topic")));
  await creator.close();
  const consumeTopic = topics[2]!; // uncompressed: every client can read it (kafkajs has no built-in lz4)

  const tput: (ThroughputFigures & { alternative: boolean })[] = [];
  const rate: (RateFigures & { alternative: boolean })[] = [];
  let consumeTotal = 0;
  for (const [i, spec] of producers.entries()) {
    const p = spec.make();
    useTopic(p, topics[i]!);
    // Warm-up: connection, metadata, producer id.
    await Promise.all(p.send(nextBatch(100)).map((a) => a.promise));
    const t = await throughput(p, spec.count);
    tput.push({ ...t, alternative: spec.alt });
    console.log(`  ${t.client.padEnd(34)} ${String(t.msgPerSec).padStart(8)} msg/s  p50 ${t.latencyMs.p50} ms  p99 ${t.latencyMs.p99} ms${t.errors ? `  ${t.errors} errors: ${t.firstError}` : ""}`);
    if (topics[i] === consumeTopic) consumeTotal = t.messages + 101;
    if (spec.rate) {
      const r = await fixedRate(p);
      rate.push({ ...r, alternative: spec.alt });
      console.log(`  ${`${r.client} @ ${RATE}/s`.padEnd(34)} acked ${r.acked}/${r.offered}  p50 ${r.latencyMs.p50} ms  p99 ${r.latencyMs.p99} ms`);
    }
    await p.close();
  }

  const consumers: ConsumerFigures[] = [];
  for (const c of [oursConsumer(BOOTSTRAP), platformaticConsumer(BOOTSTRAP), kafkajsConsumer(BOOTSTRAP)]) {
    const f = await runConsumer(c, consumeTopic, consumeTotal, 30_000);
    consumers.push(f);
    console.log(`  consume ${f.client.padEnd(26)} ${String(f.msgPerSec).padStart(8)} msg/s (${f.messages}/${consumeTotal} in ${f.seconds} s incl. group join; ${f.steadyMsgPerSec} msg/s from the first message)`);
  }

  // ---- the table ----
  const bestAlt = Math.max(...tput.filter((t) => t.alternative && t.errors === 0).map((t) => t.msgPerSec), 1);
  const bestAltRate = rate.filter((r) => r.alternative);
  const bestAltConsume = Math.max(...consumers.slice(1).filter((c) => c.messages === consumeTotal).map((c) => c.msgPerSec), 1);
  const oursBest = Math.max(...tput.filter((t) => !t.alternative).map((t) => t.msgPerSec));
  const oursProduce = tput[1]!.msgPerSec;
  const pad = (s: string | number, w: number) => String(s).padStart(w);
  const lines: string[] = [];
  lines.push("");
  lines.push(`Producers: acks=all, ${VALUE_BYTES}-byte JSON values, ${KEYS.toLocaleString("en")} distinct keys, batches of ${BATCH}, <= ${MAX_OUTSTANDING.toLocaleString("en")} outstanding`);
  lines.push(`${"client".padEnd(36)}${pad("msg/s", 10)}${pad("x best alt", 12)}${pad("p50 ms", 10)}${pad("p99 ms", 10)}${pad(`p50@${RATE / 1000}k/s`, 12)}${pad(`p99@${RATE / 1000}k/s`, 12)}`);
  for (const t of tput) {
    const r = rate.find((x) => x.client === t.client);
    lines.push(
      `${t.client.padEnd(36)}${pad(t.msgPerSec.toLocaleString("en"), 10)}${pad(`${(t.msgPerSec / bestAlt).toFixed(2)}x`, 12)}${pad(t.latencyMs.p50, 10)}${pad(t.latencyMs.p99, 10)}` +
        `${pad(r ? r.latencyMs.p50 : "-", 12)}${pad(r ? r.latencyMs.p99 : "-", 12)}${t.errors ? `  (${t.errors} errors)` : ""}`,
    );
  }
  lines.push("");
  lines.push(`Consumers: fresh group, from the beginning of one uncompressed topic of ${consumeTotal.toLocaleString("en")} messages`);
  lines.push(`${"client".padEnd(36)}${pad("msg/s", 10)}${pad("x best alt", 12)}${pad("MB/s", 10)}${pad("read", 10)}${pad("seconds", 10)}${pad("from 1st msg", 14)}`);
  for (const c of consumers) {
    lines.push(
      `${c.client.padEnd(36)}${pad(c.msgPerSec.toLocaleString("en"), 10)}${pad(`${(c.msgPerSec / bestAltConsume).toFixed(2)}x`, 12)}${pad(c.mbPerSec, 10)}` +
        `${pad(c.messages, 10)}${pad(c.seconds, 10)}${pad(c.steadyMsgPerSec.toLocaleString("en"), 14)}`,
    );
  }
  lines.push("(msg/s counts from subscribe to the last message, group join included; the last column from the first message on)");
  const targets = {
    oursBestMsgPerSec: oursBest,
    oursProduceMsgPerSec: oursProduce,
    bestAlternativeMsgPerSec: bestAlt,
    ratioBest: round(oursBest / bestAlt),
    ratioProduce: round(oursProduce / bestAlt),
    meets3x: oursBest >= 3 * bestAlt,
    meets200k: oursBest >= 200_000,
  };
  lines.push("");
  lines.push(
    `Targets: ours >= 3x best alternative: ${targets.meets3x ? "yes" : "NO"} (${targets.ratioBest}x best mode, ${targets.ratioProduce}x with produce()); ` +
      `>= 200k msg/s: ${targets.meets200k ? "yes" : "NO"} (${oursBest.toLocaleString("en")})`,
  );
  const load1 = loadavg();
  lines.push(`Load average before ${load0.map((x) => x.toFixed(2)).join(" ")}, after ${load1.map((x) => x.toFixed(2)).join(" ")} (2 cores, broker co-located)`);
  console.log(lines.join("\n"));

  const path = await writeResult("kafka", {
    broker: BOOTSTRAP,
    valueBytes: VALUE_BYTES,
    keys: KEYS,
    batch: BATCH,
    maxOutstanding: MAX_OUTSTANDING,
    scale: SCALE,
    producers: tput,
    fixedRate: rate,
    consumers,
    consumeTopicMessages: consumeTotal,
    targets,
    loadavg: { before: load0, after: load1 },
    bestAlternativeAtRate: bestAltRate.map((r) => ({ client: r.client, p50: r.latencyMs.p50, p99: r.latencyMs.p99 })),
  });
  console.log(`\nresult: ${path}`);

  // The bench topics hold millions of messages: drop them (best effort).
  const del = Bun.spawn([join(import.meta.dir, "../../infrastructure/kafka/bin/kafka-topics"), "--bootstrap-server", BOOTSTRAP, "--delete", "--topic", `bench-kafka-${stamp}-.*`], {
    stdout: "ignore",
    stderr: "ignore",
  });
  await del.exited;
}

await main();
// kafkajs and @platformatic/kafka may leave sockets/timers behind after close.
process.exit(0);
