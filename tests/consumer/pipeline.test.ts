/**
 * The consumer app against the real stack: at-least-once delivery with exactly-once results (distinct uuids per
 * event name equal what was acknowledged), crash and membership changes, poison messages, ClickHouse outages.
 * Each test has its own topic, group and team id, so it shares the brokers but not the data.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { Consumer } from "../../lib/kafka/consumer.ts";
import { type AppProcess, startApp } from "../support/apps.ts";
import { mergeCounts, produceEvents } from "../support/events.ts";
import { Producer } from "../../lib/kafka/producer.ts";
import { FaultProxy } from "../support/fault-proxy.ts";
import { ch, CLICKHOUSE, KAFKA, lagOf, uniqueName, uniqueTeamId, waitFor } from "../support/stack.ts";

const running: AppProcess[] = [];
const proxies: FaultProxy[] = [];
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null) await p.kill9();
  for (const p of proxies) p.down();
});

function clickHouseProxy(): FaultProxy {
  const p = new FaultProxy(CLICKHOUSE);
  proxies.push(p);
  return p;
}

function consumerEnv(topic: string, group: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    CONSUMER_EVENTS_TOPIC: topic,
    CONSUMER_KAFKA_GROUP_ID: group,
    CONSUMER_KAFKA_BOOTSTRAP_SERVERS: KAFKA,
    CONSUMER_DLQ_TOPIC: `${topic}-dlq`,
    CONSUMER_BATCH_LINGER_MS: "300",
    CONSUMER_LAG_INTERVAL_MS: "1000",
    // Faster group changes in tests than the production defaults.
    CONSUMER_KAFKA_SESSION_TIMEOUT_MS: "6000",
    CONSUMER_KAFKA_HEARTBEAT_INTERVAL_MS: "500",
    ...extra,
  };
}

async function consumer(topic: string, group: string, extra?: Record<string, string>): Promise<AppProcess> {
  const app = await startApp("consumer", consumerEnv(topic, group, extra));
  running.push(app);
  return app;
}

/** Distinct uuids per event name for a team: what the query API counts. */
async function distinctCounts(team: number): Promise<Map<string, number>> {
  const rows = await ch(`SELECT event, uniqExact(uuid) FROM events WHERE team_id = ${team} GROUP BY event`);
  return new Map(rows.map(([e, n]) => [e!, Number(n)]));
}

async function totals(team: number): Promise<{ rows: number; distinct: number }> {
  const [[rows, distinct]] = (await ch(`SELECT count(), uniqExact(uuid) FROM events WHERE team_id = ${team}`)) as [[string, string]];
  return { rows: Number(rows), distinct: Number(distinct) };
}

function sum(m: Map<string, number>): number {
  return [...m.values()].reduce((a, b) => a + b, 0);
}

describe("consumer pipeline", () => {
  test("poison messages go to the DLQ with their reason and the messages behind them are inserted", async () => {
    const topic = uniqueName("t-poison");
    const group = uniqueName("g");
    const team = uniqueTeamId();
    const before = await produceEvents(topic, team, 500);
    const producer = new Producer({ "bootstrap.servers": KAFKA });
    const bad = [
      await producer.produce(topic, "user-1", "{not json"),
      await producer.produce(topic, "user-2", JSON.stringify({ v: 1, uuid: "nope", team_id: team })),
    ];
    await producer.close();
    const after = await produceEvents(topic, team, 500, 500);
    const expected = mergeCounts(before, after);

    await consumer(topic, group);
    await waitFor("all good events inserted", 60_000, async () => (await totals(team)).distinct === 1000);
    expect(await distinctCounts(team)).toEqual(expected);

    const dlq = new Consumer({ "bootstrap.servers": KAFKA, "group.id": uniqueName("dlq-reader") }, { headers: true });
    dlq.subscribe([`${topic}-dlq`]);
    const got: { reason: string; partition: string; offset: string }[] = [];
    try {
      await waitFor("two DLQ messages", 30_000, async () => {
        for (const m of await dlq.poll(100)) {
          const h = Object.fromEntries((m.headers ?? []).map((x) => [x.key, new TextDecoder().decode(x.value ?? new Uint8Array())]));
          got.push({ reason: h.dlq_reason!, partition: h.source_partition!, offset: h.source_offset! });
        }
        return got.length >= 2;
      });
    } finally {
      await dlq.close();
    }
    expect(got.map((g) => g.reason).sort()).toEqual(["schema_violation", "undecodable"]);
    const sources = bad.map((r) => ({ partition: String(r.partition), offset: String(r.offset) }));
    for (const s of sources) expect(got.some((g) => g.partition === s.partition && g.offset === s.offset)).toBe(true);
    await waitFor("lag drained", 30_000, async () => (await lagOf(group, topic)) === 0n);
  }, 120_000);

  test("kill -9 in the middle of a batch, restart: counts per event name equal what was acknowledged", async () => {
    const topic = uniqueName("t-kill");
    const group = uniqueName("g");
    const team = uniqueTeamId();
    let expected = await produceEvents(topic, team, 20_000);
    // Long linger and small batches: the kill lands while a batch is pending, after some batches committed.
    const env = { CONSUMER_BATCH_LINGER_MS: "2000", CONSUMER_BATCH_MAX_ROWS: "3000" };
    const first = await consumer(topic, group, env);
    await waitFor("some rows inserted", 60_000, async () => (await totals(team)).distinct > 0);
    expected = mergeCounts(expected, await produceEvents(topic, team, 10_000, 20_000));
    await first.kill9();
    expected = mergeCounts(expected, await produceEvents(topic, team, 10_000, 30_000));
    await consumer(topic, group, env);
    await waitFor("every event inserted", 90_000, async () => (await totals(team)).distinct === sum(expected), 500);
    expect(await distinctCounts(team)).toEqual(expected);
    await waitFor("lag drained", 30_000, async () => (await lagOf(group, topic)) === 0n);
  }, 240_000);

  test("three consumers, one killed and one added during a run: no loss, no duplicate counts", async () => {
    const topic = uniqueName("t-members");
    const group = uniqueName("g");
    const team = uniqueTeamId();
    let expected = await produceEvents(topic, team, 5_000);
    const members = [await consumer(topic, group), await consumer(topic, group), await consumer(topic, group)];
    for (let round = 0; round < 6; round++) {
      expected = mergeCounts(expected, await produceEvents(topic, team, 5_000, 5_000 * (round + 1)));
      if (round === 1) await members[1]!.kill9();
      if (round === 3) members.push(await consumer(topic, group));
      await Bun.sleep(500);
    }
    await waitFor("every event inserted", 120_000, async () => (await totals(team)).distinct === sum(expected), 500);
    expect(await distinctCounts(team)).toEqual(expected);
    await waitFor("lag drained", 60_000, async () => (await lagOf(group, topic)) === 0n);
    // The survivors leave cleanly on SIGTERM.
    for (const m of [members[0]!, members[2]!, members[3]!]) expect(await m.stop()).toBe(0);
  }, 300_000);

  test("ClickHouse unreachable for 30 s: the consumer survives, lag grows then drains, nothing is lost", async () => {
    const topic = uniqueName("t-chdown");
    const group = uniqueName("g");
    const team = uniqueTeamId();
    let expected = await produceEvents(topic, team, 2_000);
    const proxy = clickHouseProxy();
    const app = await consumer(topic, group, { CONSUMER_RETRY_MAX_BACKOFF_MS: "2000", CLICKHOUSE_URL: proxy.url });
    await waitFor("first events inserted", 60_000, async () => (await totals(team)).distinct === 2_000);
    proxy.down();
    try {
      expected = mergeCounts(expected, await produceEvents(topic, team, 20_000, 2_000));
      const started = Date.now();
      const lag = await waitFor("lag to grow", 20_000, async () => {
        const l = await lagOf(group, topic);
        return l > 0n ? l : null;
      });
      expect(lag).toBeGreaterThan(0n);
      await Bun.sleep(Math.max(0, 30_000 - (Date.now() - started)));
      expect(app.proc.exitCode).toBeNull();
      const ready = await fetch(`${app.url}/ready`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { failing: string[] }).failing).toContain("clickhouse");
    } finally {
      proxy.up();
    }
    await waitFor("every event inserted after recovery", 120_000, async () => (await totals(team)).distinct === sum(expected), 500);
    expect(await distinctCounts(team)).toEqual(expected);
    await waitFor("lag drained", 60_000, async () => (await lagOf(group, topic)) === 0n);
    expect(app.proc.exitCode).toBeNull();
    expect(app.output()).toContain("paused partitions");
    expect(await app.stop()).toBe(0);
  }, 300_000);

  test("SIGTERM while ClickHouse is down: exits within its stop budget and commits nothing past unstored rows", async () => {
    const topic = uniqueName("t-stopdown");
    const group = uniqueName("g");
    const team = uniqueTeamId();
    let expected = await produceEvents(topic, team, 2_000);
    const proxy = clickHouseProxy();
    const env = { CONSUMER_RETRY_MAX_BACKOFF_MS: "1000", CONSUMER_BATCH_LINGER_MS: "300", CLICKHOUSE_URL: proxy.url };
    const first = await consumer(topic, group, env);
    await waitFor("first events inserted", 60_000, async () => (await totals(team)).distinct === 2_000);
    proxy.down();
    try {
      expected = mergeCounts(expected, await produceEvents(topic, team, 5_000, 2_000));
      // Let the consumer read them, fail its insert and fill the next batch behind it.
      await waitFor("consumer paused", 20_000, () => first.output().includes("paused partitions"));
      await Bun.sleep(1_500);
      const started = Date.now();
      expect(await first.stop()).toBe(0);
      // ingest.stop's 30 s budget plus leaving the group.
      expect(Date.now() - started).toBeLessThan(45_000);
    } finally {
      proxy.up();
    }
    await consumer(topic, group, env);
    await waitFor("every event inserted by the next member", 90_000, async () => (await totals(team)).distinct === sum(expected), 500);
    expect(await distinctCounts(team)).toEqual(expected);
  }, 240_000);
});
