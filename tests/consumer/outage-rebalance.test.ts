/**
 * Pause and rebalance, and restarts, against the real broker and ClickHouse.
 *
 * - ClickHouse goes down (a FaultProxy in front of the shared server refuses connections: the shared server is
 *   never stopped), the consumer pauses; a second consumer joins and leaves; ClickHouse comes back: lag drains to
 *   0 and the counts are exact. librdkafka keeps a partition's pause flag across re-assignment, so a consumer that
 *   only reset its own flag on assign would never fetch those partitions again.
 * - kill -9 and an immediate restart on the same slot: with static membership the partitions come back at once,
 *   not after the session timeout (left at librdkafka's default, 45 s, here).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { type AppProcess, startApp } from "../support/apps.ts";
import { mergeCounts, produceEvents } from "../support/events.ts";
import { FaultProxy } from "../support/fault-proxy.ts";
import { ch, CLICKHOUSE, freePort, KAFKA, lagOf, uniqueName, uniqueTeamId, waitFor } from "../support/stack.ts";

const running: AppProcess[] = [];
const proxies: FaultProxy[] = [];
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null) await p.kill9();
  for (const p of proxies) p.down();
});

async function distinctCounts(team: number): Promise<Map<string, number>> {
  const rows = await ch(`SELECT event, uniqExact(uuid) FROM events WHERE team_id = ${team} GROUP BY event`);
  return new Map(rows.map(([e, n]) => [e!, Number(n)]));
}
const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

async function assigned(app: AppProcess): Promise<number> {
  return ((await (await fetch(`${app.url}/ready`)).json()) as { assigned: number }).assigned;
}

describe("consumer outages and membership", () => {
  test("ClickHouse down, a second consumer joins and leaves, ClickHouse back: lag 0, counts exact", async () => {
    const topic = uniqueName("t-pause");
    const group = uniqueName("g");
    const team = uniqueTeamId();
    const proxy = new FaultProxy(CLICKHOUSE);
    proxies.push(proxy);
    const env = {
      CONSUMER_EVENTS_TOPIC: topic,
      CONSUMER_KAFKA_GROUP_ID: group,
      CONSUMER_DLQ_TOPIC: `${topic}-dlq`,
      CLICKHOUSE_URL: proxy.url,
      CONSUMER_BATCH_LINGER_MS: "300",
      CONSUMER_RETRY_MAX_BACKOFF_MS: "1000",
      CONSUMER_REVOKE_FLUSH_TIMEOUT_MS: "2000",
      CONSUMER_KAFKA_SESSION_TIMEOUT_MS: "6000",
      CONSUMER_KAFKA_HEARTBEAT_INTERVAL_MS: "500",
    };
    let expected = await produceEvents(topic, team, 2_000);
    const first = await startApp("consumer", env);
    running.push(first);
    await waitFor("first events stored", 60_000, async () => total(await distinctCounts(team)) === 2_000);

    proxy.down();
    expected = mergeCounts(expected, await produceEvents(topic, team, 5_000, 2_000));
    await waitFor("first member paused", 30_000, () => first.output().includes("paused partitions"));
    // A second member joins while ClickHouse is down (its /ready is 503: wait for /health), takes half the
    // partitions, and leaves again.
    const second = await startApp("consumer", env, 60_000, "/health");
    running.push(second);
    await waitFor("partitions split between two members", 30_000, async () => (await assigned(first)) > 0 && (await assigned(second)) > 0 && (await assigned(first)) < 12);
    expected = mergeCounts(expected, await produceEvents(topic, team, 3_000, 7_000));
    // Its stop waits up to 30 s for the batch it cannot store, then leaves it for redelivery.
    expect(await second.stop()).toBe(0);
    // The first member gets everything back (its revoke gives up on the batch it cannot store after 2 s).
    try {
      await waitFor("first member holds all partitions again", 60_000, async () => (await assigned(first)) === 12);
    } catch (err) {
      console.log(`--- first ---\n${first.output().slice(-6000)}\n--- second ---\n${second.output().slice(-3000)}`);
      throw err;
    }
    expect(await lagOf(group, topic)).toBeGreaterThan(0n);

    proxy.up();
    await waitFor("every event stored after ClickHouse is back", 120_000, async () => total(await distinctCounts(team)) === total(expected), 500);
    expect(await distinctCounts(team)).toEqual(expected);
    await waitFor("lag drained", 60_000, async () => (await lagOf(group, topic)) === 0n);
    expect(first.proc.exitCode).toBeNull();
    expect(await first.stop()).toBe(0);
  }, 300_000);

  test("kill -9 and an immediate restart on the same slot: partitions back and events stored within 10 s", async () => {
    const topic = uniqueName("t-restart");
    const group = uniqueName("g");
    const team = uniqueTeamId();
    // Default session timeout (45 s): a quick return can only come from static membership.
    const env = { CONSUMER_EVENTS_TOPIC: topic, CONSUMER_KAFKA_GROUP_ID: group, CONSUMER_DLQ_TOPIC: `${topic}-dlq`, CONSUMER_BATCH_LINGER_MS: "300", CONSUMER_PORT: String(freePort()) };
    let expected = await produceEvents(topic, team, 1_000);
    const first = await startApp("consumer", env);
    running.push(first);
    await waitFor("first events stored", 60_000, async () => total(await distinctCounts(team)) === 1_000);
    await first.kill9();
    const killedAt = Date.now();
    expected = mergeCounts(expected, await produceEvents(topic, team, 1_000, 1_000));
    const again = await startApp("consumer", env);
    running.push(again);
    await waitFor("events after the kill stored", 30_000, async () => total(await distinctCounts(team)) === total(expected), 100);
    const seconds = (Date.now() - killedAt) / 1000;
    console.log(`kill -9 -> restart -> events stored: ${seconds.toFixed(1)} s`);
    expect(seconds).toBeLessThan(10);
    expect(await distinctCounts(team)).toEqual(expected);
    expect(await again.stop()).toBe(0);
  }, 120_000);
});
