/**
 * Chaos run: continuous load through capture (client uuids, retried with the same uuid until acknowledged) on a
 * private stack, a fixed schedule of faults each followed by recovery, poison events produced straight onto the
 * events topic, then the checks the reliability promise rests on:
 *
 * - acknowledged but missing from ClickHouse = 0;
 * - the trend API's total for the run = the distinct acknowledged uuids stored;
 * - the DLQ holds exactly the poison events, once each.
 *
 * Per fault: capture's error answers (503) and refused connections from the fault until recovery, the consumer
 * group's peak lag, and the recovery time (fault lifted -> a canary event sent through capture is queryable).
 */
import { readFileSync } from "node:fs";
import { createPostgres } from "../../lib/postgres/client.ts";
import { createProject } from "../../lib/projects/create-project.ts";
import { type CapturedEvent, encodeCapturedEvent } from "../../lib/events/captured-event.ts";
import { Consumer } from "../../lib/kafka/consumer.ts";
import { KafkaProbe } from "../../lib/kafka/probe.ts";
import { Producer } from "../../lib/kafka/producer.ts";
import { PrivateStack } from "./private-stack.ts";

export interface ChaosOptions {
  /** Events per second offered to capture. */
  rate: number;
  /** Events per request. */
  batch: number;
  clickhouseDownS: number;
  kafkaDownS: number;
  redisDownS: number;
  postgresDownS: number;
  /** Pause between a fault's recovery and the next fault. */
  settleS: number;
  /** Seconds between poison events. */
  poisonEveryS: number;
  log?: (line: string) => void;
}

export const FULL: ChaosOptions = { rate: 200, batch: 10, clickhouseDownS: 30, kafkaDownS: 20, redisDownS: 15, postgresDownS: 15, settleS: 15, poisonEveryS: 5 };
export const SHORT: ChaosOptions = { rate: 100, batch: 10, clickhouseDownS: 10, kafkaDownS: 10, redisDownS: 5, postgresDownS: 5, settleS: 5, poisonEveryS: 5 };

export interface FaultFigures {
  fault: string;
  /** How long the fault lasted (injected -> lifted), seconds. */
  down_s: number;
  /** Capture answers other than 2xx (503 with Retry-After) between injection and recovery. */
  errors_503: number;
  /** Requests refused or cut (capture not listening) in the same window; retried like 503s. */
  refused: number;
  /** Highest total lag of the consumer group seen from injection to recovery (events). */
  lag_peak: number;
  /** Fault lifted (service restarted) -> a canary event sent through capture is queryable in ClickHouse, seconds. */
  recovery_s: number;
  /** Fault injected -> that canary queryable: the whole disturbance, seconds. */
  total_s: number;
}

export interface ChaosFigures {
  options: Omit<ChaosOptions, "log">;
  duration_s: number;
  acknowledged: number;
  /** Batches still unacknowledged when the run gave up retrying (their uuids are not counted as acknowledged). */
  unacknowledged: number;
  missing: number;
  /** Distinct uuids of the load's events in ClickHouse. */
  stored_distinct: number;
  /** Of those, acknowledged by capture. */
  acknowledged_stored: number;
  trend_total: number;
  poison_sent: number;
  dlq_messages: number;
  dlq_distinct_poison: number;
  dlq_unexpected: number;
  faults: FaultFigures[];
  ok: boolean;
}

const EVENT = "chaos";
const CANARY = "chaos_canary";

export async function runChaos(opts: ChaosOptions): Promise<ChaosFigures> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const stack = new PrivateStack({ CAPTURE_RETRY_AFTER_S: "1", QUERY_CACHE_TTL_S: "0", CONSUMER_BATCH_LINGER_MS: "500", CONSUMER_RETRY_MAX_BACKOFF_MS: "2000" });
  const started = performance.now();
  log(`chaos: private stack in ${stack.state}`);
  let probe: KafkaProbe | undefined;
  let poisonProducer: Producer | undefined;
  try {
    await stack.up();
    log(`chaos: stack up in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    const sql = createPostgres(stack.postgres, { max: 1 });
    const { project, secretKey } = await createProject(sql, `chaos ${new Date().toISOString()}`);
    await sql.end({ timeout: 2 });

    // ---- load ----
    const acked = new Set<string>();
    const failures: { t: number; kind: "503" | "refused" }[] = [];
    let loadOn = true;
    let giveUpAt = Number.POSITIVE_INFINITY;
    const inflight = new Set<Promise<void>>();
    let unacknowledged = 0;
    async function deliver(events: { event: string; distinct_id: string; uuid: string; properties?: Record<string, unknown> }[]): Promise<boolean> {
      const body = JSON.stringify({ api_key: project.token, batch: events });
      for (;;) {
        try {
          const res = await fetch(`${stack.capture}/batch`, { method: "POST", headers: { "content-type": "application/json" }, body, signal: AbortSignal.timeout(15_000) });
          await res.arrayBuffer();
          if (res.ok) {
            for (const e of events) acked.add(e.uuid);
            return true;
          }
          failures.push({ t: performance.now(), kind: "503" });
        } catch {
          failures.push({ t: performance.now(), kind: "refused" });
        }
        if (performance.now() > giveUpAt) return false;
        await Bun.sleep(1000);
      }
    }
    let seq = 0;
    const tickMs = (1000 * opts.batch) / opts.rate;
    const loadLoop = (async () => {
      let next = performance.now();
      while (loadOn) {
        const events = Array.from({ length: opts.batch }, () => ({ event: EVENT, distinct_id: `user-${seq % 500}`, uuid: crypto.randomUUID(), properties: { seq: seq++ } }));
        const p: Promise<void> = deliver(events).then((ok) => {
          if (!ok) unacknowledged++;
          inflight.delete(p);
        });
        inflight.add(p);
        next += tickMs;
        await Bun.sleep(Math.max(0, next - performance.now()));
      }
    })();

    // ---- lag samples (the probe's blocking calls run in a worker: the load loop never stalls) ----
    probe = new KafkaProbe({ "bootstrap.servers": stack.kafka });
    const lagSamples: { t: number; lag: number }[] = [];
    let sampling = true;
    const lagLoop = (async () => {
      while (sampling) {
        try {
          let total = 0;
          for (const topic of ["events", "events_overflow"]) for (const p of await probe!.lag("event-consumers", topic, 2000)) total += Number(p.lag);
          lagSamples.push({ t: performance.now(), lag: total });
        } catch {
          // Kafka down: no sample.
        }
        await Bun.sleep(1000);
      }
    })();

    // ---- poison: storable-looking events capture would never let through, produced straight onto the topic ----
    poisonProducer = new Producer({ "bootstrap.servers": stack.kafka, "message.timeout.ms": 120_000 });
    const poison = new Set<string>();
    let kafkaUp = true;
    let poisonOn = true;
    const poisonLoop = (async () => {
      while (poisonOn) {
        await Bun.sleep(opts.poisonEveryS * 1000);
        if (!kafkaUp || !poisonOn) continue;
        const now = new Date().toISOString();
        const e: CapturedEvent = {
          v: 1,
          uuid: crypto.randomUUID(),
          team_id: project.id,
          event: EVENT,
          distinct_id: "poison",
          timestamp: now,
          properties: { title: "Hi \ud83d" },
          ip: "",
          received_at: now,
        };
        poison.add(e.uuid);
        try {
          await poisonProducer!.produce("events", e.distinct_id, encodeCapturedEvent(e));
        } catch (err) {
          log(`chaos: poison ${e.uuid} not delivered: ${String(err)}`);
          poison.delete(e.uuid);
        }
      }
    })();

    // ---- faults ----
    const visible = async (uuid: string) =>
      (await chText(stack.clickhouse, `SELECT count() FROM events WHERE team_id = ${project.id} AND uuid = toUUID('${uuid}')`).catch(() => "0")).trim() !== "0";
    const canaries = new Set<string>();
    async function canary(): Promise<void> {
      const uuid = crypto.randomUUID();
      canaries.add(uuid);
      giveUpAt = Number.POSITIVE_INFINITY;
      await deliver([{ event: CANARY, distinct_id: "canary", uuid }]);
      while (!(await visible(uuid))) await Bun.sleep(200);
    }
    const faults: FaultFigures[] = [];
    async function fault(name: string, inject: () => Promise<void>, lift: () => Promise<void>, downS: number): Promise<void> {
      log(`chaos: ${name}`);
      const t0 = performance.now();
      await inject();
      if (downS > 0) await Bun.sleep(downS * 1000);
      await lift();
      const lifted = performance.now();
      await canary();
      const t1 = performance.now();
      const inWindow = (t: number) => t >= t0 && t <= t1;
      const f: FaultFigures = {
        fault: name,
        down_s: round((lifted - t0) / 1000),
        errors_503: failures.filter((x) => x.kind === "503" && inWindow(x.t)).length,
        refused: failures.filter((x) => x.kind === "refused" && inWindow(x.t)).length,
        lag_peak: Math.max(0, ...lagSamples.filter((s) => inWindow(s.t)).map((s) => s.lag)),
        recovery_s: round((t1 - lifted) / 1000),
        total_s: round((t1 - t0) / 1000),
      };
      faults.push(f);
      log(`chaos:   503s ${f.errors_503}, refused ${f.refused}, lag peak ${f.lag_peak}, recovered ${f.recovery_s} s after the fault was lifted`);
      await Bun.sleep(opts.settleS * 1000);
    }
    const kill9 = (app: "consumer") => process.kill(stack.pid(app), "SIGKILL");

    await Bun.sleep(opts.settleS * 1000);
    // Each kill is followed at once by `make up`, which finds the consumer dead and starts it again.
    await fault(
      "kill -9 consumer + make up, twice",
      async () => {
        kill9("consumer");
        await stack.makeUp();
        kill9("consumer");
        await stack.makeUp();
      },
      async () => {},
      0,
    );
    await fault(`ClickHouse down ${opts.clickhouseDownS} s`, () => stack.sh("stop", "clickhouse").then(() => {}), () => stack.sh("start", "clickhouse").then(() => {}), opts.clickhouseDownS);
    await fault(
      `Kafka down ${opts.kafkaDownS} s`,
      async () => {
        kafkaUp = false;
        await stack.sh("stop", "kafka");
      },
      async () => {
        await stack.sh("start", "kafka");
        kafkaUp = true;
      },
      opts.kafkaDownS,
    );
    await fault(`Redis down ${opts.redisDownS} s`, () => stack.sh("stop", "redis").then(() => {}), () => stack.sh("start", "redis").then(() => {}), opts.redisDownS);
    await fault(`PostgreSQL down ${opts.postgresDownS} s`, () => stack.sh("stop", "postgres").then(() => {}), () => stack.sh("start", "postgres").then(() => {}), opts.postgresDownS);
    await fault(
      "capture SIGTERM + restart",
      async () => {
        const pid = stack.pid("capture");
        process.kill(pid, "SIGTERM");
        while (alive(pid)) await Bun.sleep(100);
        await stack.sh("apps-up");
      },
      async () => {},
      0,
    );

    // ---- drain and check ----
    loadOn = false;
    poisonOn = false;
    await loadLoop;
    await poisonLoop;
    giveUpAt = performance.now() + 120_000;
    await Promise.all([...inflight]);
    log("chaos: load stopped; waiting for the consumer to drain");
    await until(180_000, async () => lagSamples.length > 0 && lagSamples.at(-1)!.lag === 0 && performance.now() - lagSamples.at(-1)!.t < 3000);
    sampling = false;
    await lagLoop;

    const stored = new Set((await chText(stack.clickhouse, `SELECT DISTINCT toString(uuid) FROM events WHERE team_id = ${project.id}`)).split("\n").filter(Boolean));
    const missing = [...acked].filter((u) => !stored.has(u)).length;
    const storedLoad = new Set((await chText(stack.clickhouse, `SELECT DISTINCT toString(uuid) FROM events WHERE team_id = ${project.id} AND event = '${EVENT}'`)).split("\n").filter(Boolean));
    const trendRes = await fetch(`${stack.query}/api/trends`, {
      method: "POST",
      headers: { authorization: `Bearer ${secretKey}`, "content-type": "application/json" },
      body: JSON.stringify({ series: [{ event: EVENT, math: "total" }], interval: "day", date_from: "-2d" }),
    });
    const trend = (await trendRes.json()) as { series?: { total: number }[] };
    const ackedStored = [...acked].filter((u) => !canaries.has(u) && storedLoad.has(u)).length;
    const letters = await readDlq(stack.kafka);
    const dlqUuids = letters.map((v) => {
      try {
        return (JSON.parse(v) as { uuid: string }).uuid;
      } catch {
        return "";
      }
    });
    const figures: ChaosFigures = {
      options: { rate: opts.rate, batch: opts.batch, clickhouseDownS: opts.clickhouseDownS, kafkaDownS: opts.kafkaDownS, redisDownS: opts.redisDownS, postgresDownS: opts.postgresDownS, settleS: opts.settleS, poisonEveryS: opts.poisonEveryS },
      duration_s: round((performance.now() - started) / 1000),
      acknowledged: acked.size,
      unacknowledged,
      missing,
      stored_distinct: storedLoad.size,
      acknowledged_stored: ackedStored,
      trend_total: trend.series?.[0]?.total ?? -1,
      poison_sent: poison.size,
      dlq_messages: letters.length,
      dlq_distinct_poison: new Set(dlqUuids.filter((u) => poison.has(u))).size,
      dlq_unexpected: dlqUuids.filter((u) => !poison.has(u)).length,
      faults,
      ok: false,
    };
    // Canaries are acknowledged too, under their own event name; the trend counts the load's event.
    figures.ok =
      figures.missing === 0 &&
      figures.unacknowledged === 0 &&
      figures.trend_total === figures.acknowledged_stored &&
      figures.stored_distinct === figures.acknowledged_stored &&
      figures.dlq_messages === figures.poison_sent &&
      figures.dlq_distinct_poison === figures.poison_sent &&
      figures.dlq_unexpected === 0;
    return figures;
  } finally {
    probe?.close();
    await poisonProducer?.close(2000).catch(() => {});
    await stack.destroy().catch((err) => log(`chaos: tearing the private stack down failed: ${String(err)}`));
  }
}

export function faultTable(f: ChaosFigures): string {
  const rows = [
    ["fault", "down", "503s", "refused", "lag peak", "recovery", "injected -> healthy"],
    ...f.faults.map((x) => [x.fault, `${x.down_s} s`, String(x.errors_503), String(x.refused), String(x.lag_peak), `${x.recovery_s} s`, `${x.total_s} s`]),
  ];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join("  ")).join("\n");
}

async function chText(url: string, sql: string): Promise<string> {
  const res = await fetch(`${url}/?database=analytics`, { method: "POST", body: sql, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`ClickHouse: ${text}`);
  return text;
}

async function readDlq(kafka: string): Promise<string[]> {
  const c = new Consumer({ "bootstrap.servers": kafka, "group.id": `chaos-dlq-${crypto.randomUUID()}` });
  c.subscribe(["events_dlq"]);
  const values: string[] = [];
  const dec = new TextDecoder();
  let quietSince = performance.now();
  const deadline = performance.now() + 30_000;
  try {
    // Until nothing new arrived for 3 s after the assignment (the DLQ is complete once the consumer drained).
    while (performance.now() < deadline) {
      const got = await c.poll(1000);
      for (const m of got) values.push(m.value ? dec.decode(m.value) : "");
      if (got.length > 0 || c.assignment().length === 0) quietSince = performance.now();
      else if (performance.now() - quietSince > 3000) break;
      await Bun.sleep(50);
    }
  } finally {
    await c.close();
  }
  return values;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").startsWith("Z");
  } catch {
    return false;
  }
}

async function until(timeoutMs: number, cond: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`chaos: condition not reached within ${timeoutMs} ms`);
    await Bun.sleep(500);
  }
}

const round = (x: number) => Math.round(x * 10) / 10;
