/**
 * Rows ClickHouse rejects, end to end, and dead letters written once.
 *
 * - Acceptance (issue 12): a message that decodes but that ClickHouse rejects, produced straight onto an
 *   (isolated) events topic in the middle of a batch: the other rows land, that one is in the DLQ with reason
 *   `insert_rejected` and ClickHouse's message, lag returns to 0.
 * - In-process, with the real broker and ClickHouse: a DLQ producer that fails part of the time (a real producer
 *   pointed at a port nothing listens on) never causes a copy; a revoke whose flush times out leaves the batch
 *   uncommitted, and when the partitions come back the rows are stored and each dead letter is there once.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { Registry } from "prom-client";
import { ClickHouseSink } from "../../apps/consumer/clickhouse-sink.ts";
import { DeadLetters } from "../../apps/consumer/dead-letters.ts";
import { Ingest } from "../../apps/consumer/ingest.ts";
import { consumerMetrics } from "../../apps/consumer/metrics.ts";
import { createClickHouse } from "../../lib/clickhouse/client.ts";
import { encodeCapturedEvent } from "../../lib/events/captured-event.ts";
import { Consumer } from "../../lib/kafka/consumer.ts";
import { Producer } from "../../lib/kafka/producer.ts";
import type { ConsumedMessage } from "../../lib/kafka/types.ts";
import { createLogger } from "../../lib/log/logger.ts";
import { type AppProcess, startApp } from "../support/apps.ts";
import { readDeadLetters } from "../support/dlq.ts";
import { FaultProxy } from "../support/fault-proxy.ts";
import { capturedEvent, poisonEvent } from "../support/events.ts";
import { ch, CH_DB, CLICKHOUSE, freePort, KAFKA, lagOf, uniqueName, uniqueTeamId, waitFor } from "../support/stack.ts";

const running: AppProcess[] = [];
const closers: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null) await p.kill9();
  for (const c of closers) await c();
});

async function distinct(team: number): Promise<number> {
  return Number((await ch(`SELECT uniqExact(uuid) FROM events WHERE team_id = ${team}`))[0]![0]);
}

/** Good events around poisoned ones, all on partition-spreading keys, produced in one go (one batch downstream). */
async function produceWithPoison(topic: string, team: number, good: number, poison: ("surrogate" | "year10000")[]) {
  const producer = new Producer({ "bootstrap.servers": KAFKA });
  try {
    const messages = [];
    for (let i = 0; i < good; i++) {
      const e = capturedEvent(team, i);
      messages.push({ key: e.distinct_id, value: encodeCapturedEvent(e) });
      if (i === Math.floor(good / 2)) for (const [k, kind] of poison.entries()) messages.push({ key: `poison-${k}`, value: encodeCapturedEvent(poisonEvent(team, kind, good + k)) });
    }
    const reports = await producer.produceMany(topic, messages);
    const half = Math.floor(good / 2) + 1;
    return reports.slice(half, half + poison.length);
  } finally {
    await producer.close();
  }
}

describe("rows ClickHouse rejects", () => {
  test("a poisoned message in the middle of a batch: the rest lands, it is in the DLQ with ClickHouse's message, lag 0", async () => {
    const topic = uniqueName("t-rejected");
    const group = uniqueName("g");
    const team = uniqueTeamId();
    const poison = await produceWithPoison(topic, team, 600, ["surrogate"]);
    const app = await startApp("consumer", {
      CONSUMER_EVENTS_TOPIC: topic,
      CONSUMER_KAFKA_GROUP_ID: group,
      CONSUMER_DLQ_TOPIC: `${topic}-dlq`,
      CONSUMER_BATCH_LINGER_MS: "500",
    });
    running.push(app);
    await waitFor("the 600 good events stored", 60_000, async () => (await distinct(team)) === 600);
    const letters = await readDeadLetters(`${topic}-dlq`, 1);
    expect(letters.length).toBe(1);
    expect(letters[0]).toMatchObject({ reason: "insert_rejected", sourceTopic: topic, sourcePartition: poison[0]!.partition, sourceOffset: poison[0]!.offset });
    expect(letters[0]!.detail).toContain("Code: 25");
    expect(letters[0]!.detail).toContain("surrogate");
    await waitFor("lag drained", 30_000, async () => (await lagOf(group, topic)) === 0n);
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toMatch(/^consumer_dlq_total\{reason="insert_rejected"[^}]*\} 1$/m);
    expect(await app.stop()).toBe(0);
  }, 120_000);
});

describe("a rejected row too large for the DLQ", () => {
  test("is dead-lettered with its value cut to 64 KiB (header dlq_truncated_from), not retried forever", async () => {
    const topic = uniqueName("t-huge");
    const group = uniqueName("g");
    const team = uniqueTeamId();
    // Near the broker's 1 MiB limit: the source topic takes it, the DLQ copy (value + headers) is over the DLQ
    // producer's message.max.bytes.
    const big = poisonEvent(team, "surrogate", 1);
    big.properties = { ...big.properties, blob: "x".repeat(1_040_000) };
    const producer = new Producer({ "bootstrap.servers": KAFKA, "message.max.bytes": 1_048_576 });
    const good = capturedEvent(team, 2);
    const [report] = await producer.produceMany(topic, [
      { key: "big", value: encodeCapturedEvent(big) },
      { key: good.distinct_id, value: encodeCapturedEvent(good) },
    ]);
    await producer.close();
    const app = await startApp("consumer", { CONSUMER_EVENTS_TOPIC: topic, CONSUMER_KAFKA_GROUP_ID: group, CONSUMER_DLQ_TOPIC: `${topic}-dlq`, CONSUMER_BATCH_LINGER_MS: "300" });
    running.push(app);
    await waitFor("the good event stored", 60_000, async () => (await distinct(team)) === 1);
    const letters = await readDeadLetters(`${topic}-dlq`, 1);
    expect(letters.length).toBe(1);
    expect(letters[0]).toMatchObject({ reason: "insert_rejected", sourcePartition: report!.partition, sourceOffset: report!.offset });
    expect(letters[0]!.value.length).toBe(65_536);
    await waitFor("lag drained", 30_000, async () => (await lagOf(group, topic)) === 0n);
    expect(await app.stop()).toBe(0);
  }, 120_000);
});

describe("an insert error with a code in neither list", () => {
  test("is retried as transient for CONSUMER_UNKNOWN_ERROR_RETRY_MS, then the batch is split and only that row dead-lettered", async () => {
    const topic = uniqueName("t-unknown");
    const group = uniqueName("g");
    const team = uniqueTeamId();
    const marker = `marker-${crypto.randomUUID()}`;
    // ClickHouse itself, except that an insert holding the marked row is answered as 18.16 answers errors, with
    // a code the consumer does not know (48: NOT_IMPLEMENTED).
    const proxy = new FaultProxy(CLICKHOUSE, (body) =>
      body.includes(marker) ? new Response("Code: 48, e.displayText() = DB::Exception: injected: not implemented, e.what() = DB::Exception\n", { status: 500 }) : undefined,
    );
    try {
      const producer = new Producer({ "bootstrap.servers": KAFKA });
      const messages = Array.from({ length: 300 }, (_, i) => capturedEvent(team, i));
      messages[150]!.properties = { ...messages[150]!.properties, marker };
      const reports = await producer.produceMany(topic, messages.map((e) => ({ key: e.distinct_id, value: encodeCapturedEvent(e) })));
      await producer.close();
      const app = await startApp("consumer", {
        CONSUMER_EVENTS_TOPIC: topic,
        CONSUMER_KAFKA_GROUP_ID: group,
        CONSUMER_DLQ_TOPIC: `${topic}-dlq`,
        CONSUMER_BATCH_LINGER_MS: "500",
        CONSUMER_RETRY_MAX_BACKOFF_MS: "500",
        CONSUMER_UNKNOWN_ERROR_RETRY_MS: "4000",
        CLICKHOUSE_URL: proxy.url,
      });
      running.push(app);
      const started = Date.now();
      await waitFor("the consumer retrying", 30_000, () => app.output().includes("retrying"));
      // Within the bounded time nothing is stored: the unknown error is treated as an outage.
      expect(await distinct(team)).toBe(0);
      await waitFor("the 299 other events stored", 60_000, async () => (await distinct(team)) === 299);
      expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
      const letters = await readDeadLetters(`${topic}-dlq`, 1);
      expect(letters.length).toBe(1);
      expect(letters[0]).toMatchObject({ reason: "insert_rejected", sourcePartition: reports[150]!.partition, sourceOffset: reports[150]!.offset });
      expect(letters[0]!.detail).toContain("Code: 48");
      await waitFor("lag drained", 30_000, async () => (await lagOf(group, topic)) === 0n);
      const metrics = await (await fetch(`${app.url}/metrics`)).text();
      expect(metrics).toMatch(/^consumer_insert_errors_total\{kind="unknown"[^}]*\} ([3-9]|\d\d+)$/m);
      expect(await app.stop()).toBe(0);
    } finally {
      proxy.down();
    }
  }, 120_000);
});

describe("dead letters are written once", () => {
  function ingestFor(topic: string, group: string, deadLetters: DeadLetters, revokeFlushTimeoutMs = 15_000) {
    const ingest = new Ingest(new ClickHouseSink(createClickHouse({ url: CLICKHOUSE, database: CH_DB })), deadLetters, consumerMetrics(new Registry()), createLogger("test", "silent"), {
      limits: { maxRows: 50_000, maxBytes: 1 << 26, lingerMs: 300 },
      retryMaxBackoffMs: 200,
      revokeFlushTimeoutMs,
    });
    const consumer = new Consumer({ "bootstrap.servers": KAFKA, "group.id": group, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500 }, { onRebalance: ingest.onRebalance });
    consumer.subscribe([topic]);
    ingest.start(consumer);
    return ingest;
  }

  /** A real DLQ producer, and one pointed at a port where no broker listens (its deliveries time out). */
  function dlqs(topic: string) {
    const ok = new Producer({ "bootstrap.servers": KAFKA });
    const broken = new Producer({ "bootstrap.servers": `127.0.0.1:${freePort()}`, "message.timeout.ms": 300, log_level: 2 });
    closers.push(() => ok.close(), () => broken.close(100));
    return { ok: new DeadLetters(ok, topic), broken: new DeadLetters(broken, topic) };
  }

  test("a DLQ producer that fails some deliveries: each dead letter once, the rest stored and committed", async () => {
    const topic = uniqueName("t-dlqonce");
    const group = uniqueName("g");
    const team = uniqueTeamId();
    await produceWithPoison(topic, team, 300, ["surrogate", "year10000", "surrogate"]);
    const { ok, broken } = dlqs(`${topic}-dlq`);
    // The first delivery of every dead letter but the first fails, so the step is retried with only those.
    const attempts = new Map<string, number>();
    const flaky = {
      send(m: ConsumedMessage, reason: string, detail: string) {
        const k = `${m.partition}/${m.offset}`;
        const n = (attempts.get(k) ?? 0) + 1;
        attempts.set(k, n);
        return (n === 1 && attempts.size > 1 ? broken : ok).send(m, reason, detail);
      },
    } as unknown as DeadLetters;
    const ingest = ingestFor(topic, group, flaky);
    try {
      await waitFor("300 good events stored", 60_000, async () => (await distinct(team)) === 300);
      await waitFor("lag drained", 30_000, async () => (await lagOf(group, topic)) === 0n);
    } finally {
      await ingest.stop(10_000);
    }
    const letters = await readDeadLetters(`${topic}-dlq`, 3);
    expect(letters.length).toBe(3);
    expect(new Set(letters.map((l) => `${l.sourcePartition}/${l.sourceOffset}`)).size).toBe(3);
    expect(letters.every((l) => l.reason === "insert_rejected")).toBe(true);
    // Two dead letters needed a second delivery; none a third (the delivered one was not sent again).
    expect([...attempts.values()].sort()).toEqual([1, 2, 2]);
  }, 120_000);

  test("a revoke whose flush times out (DLQ down): nothing committed; when the partitions return, rows stored and each dead letter once", async () => {
    const topic = uniqueName("t-revoke");
    const group = uniqueName("g");
    const team = uniqueTeamId();
    await produceWithPoison(topic, team, 400, ["surrogate", "year10000"]);
    const { ok, broken } = dlqs(`${topic}-dlq`);
    let dlqUp = false;
    const switchable = { send: (m: ConsumedMessage, r: string, d: string) => (dlqUp ? ok : broken).send(m, r, d) } as unknown as DeadLetters;
    const ingest = ingestFor(topic, group, switchable, 1500);
    let other: Consumer | undefined;
    try {
      // Rows are inserted, but the batch cannot commit while the DLQ fails.
      await waitFor("good rows inserted", 60_000, async () => (await distinct(team)) === 400);
      expect(await lagOf(group, topic)).toBe(402n);
      // A second member joins: the revoke's flush gives up after 1.5 s and commits nothing.
      other = new Consumer({ "bootstrap.servers": KAFKA, "group.id": group, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500 });
      other.subscribe([topic]);
      const joined = other;
      await waitFor("second member assigned", 30_000, async () => {
        // Serving the queue applies the assignment; what it hands out is never committed.
        await joined.poll(100);
        return joined.assignment().length > 0;
      });
      expect(await lagOf(group, topic)).toBe(402n);
      dlqUp = true;
      // It leaves without reading anything it commits: everything comes back to the first member.
      await joined.close();
      other = undefined;
      await waitFor("lag drained", 60_000, async () => (await lagOf(group, topic)) === 0n);
    } finally {
      await other?.close();
      await ingest.stop(10_000);
    }
    expect(await distinct(team)).toBe(400);
    const letters = await readDeadLetters(`${topic}-dlq`, 2);
    expect(letters.length).toBe(2);
    expect(new Set(letters.map((l) => `${l.sourcePartition}/${l.sourceOffset}`)).size).toBe(2);
  }, 180_000);
});
