/**
 * Overflow is ingested: with capture's rate limiter in overflow mode, events past the limit go to the overflow
 * topic (202/200 all the same), and the consumer, reading both topics (CONSUMER_TOPICS), stores every one of them.
 * Isolated topics, group and project: the shared `events` / `events_overflow` are never touched.
 */
import { afterAll, expect, test } from "bun:test";
import { ClusterClient } from "../../lib/kafka/metadata.ts";
import { newProject } from "../capture/capture-stack.ts";
import { type AppProcess, startApp } from "../support/apps.ts";
import { ch, KAFKA, ROOT, uniqueName, waitFor } from "../support/stack.ts";

const running: AppProcess[] = [];
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null) await p.kill9();
});

function createTopic(topic: string): void {
  const created = Bun.spawnSync([`${ROOT}/infrastructure/kafka/bin/kafka-topics`, "--bootstrap-server", KAFKA, "--create", "--if-not-exists", "--topic", topic, "--partitions", "3", "--replication-factor", "1"], {
    env: { ...process.env, KAFKA_HEAP_OPTS: "-Xmx192m" },
  });
  if (created.exitCode !== 0) throw new Error(`kafka-topics --create ${topic}: ${created.stderr.toString()}`);
}

function endOffsets(topic: string): bigint {
  const c = new ClusterClient({ "bootstrap.servers": KAFKA });
  try {
    return c.lag(uniqueName("nobody"), topic, 5000).reduce((a, p) => a + p.high, 0n);
  } finally {
    c.destroy();
  }
}

test("events routed to the overflow topic by the rate limiter reach ClickHouse like all others", async () => {
  const project = await newProject("overflow");
  // Capture validates topic names as identifiers: no dashes.
  const events = uniqueName("ovf_events").replaceAll("-", "_");
  const overflow = uniqueName("ovf_overflow").replaceAll("-", "_");
  createTopic(events);
  createTopic(overflow);
  const capture = await startApp("capture", {
    CAPTURE_EVENTS_TOPIC: events,
    CAPTURE_OVERFLOW_TOPIC: overflow,
    CAPTURE_KAFKA_BOOTSTRAP_SERVERS: KAFKA,
    CAPTURE_RATE_LIMIT: "fixed_window",
    // 30 events per aligned 30 s window: the first request's 30 events pass, the rest overflow (a window
    // boundary during the run lets at most 30 more through).
    CAPTURE_RATE_LIMIT_EVENTS_PER_S: "1",
    CAPTURE_RATE_LIMIT_WINDOW_S: "30",
    CAPTURE_RATE_LIMIT_ACTION: "overflow",
  });
  running.push(capture);
  const uuids: string[] = [];
  for (let r = 0; r < 10; r++) {
    const batch = Array.from({ length: 30 }, (_, i) => ({ event: "overflowed", distinct_id: `u-${r}-${i}`, uuid: crypto.randomUUID() }));
    const res = await fetch(`${capture.url}/batch`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ api_key: project.token, batch }) });
    expect(res.status).toBeLessThan(300);
    uuids.push(...batch.map((e) => e.uuid));
  }
  // Most of the 300 went past the limit to the overflow topic.
  expect(endOffsets(overflow)).toBeGreaterThanOrEqual(200n);
  expect(endOffsets(events)).toBeGreaterThan(0n);

  running.push(
    await startApp("consumer", {
      CONSUMER_TOPICS: `${events},${overflow}`,
      CONSUMER_KAFKA_GROUP_ID: uniqueName("g"),
      CONSUMER_DLQ_TOPIC: `${events}_dlq`,
      CONSUMER_BATCH_LINGER_MS: "300",
    }),
  );
  await waitFor("all 300 acknowledged events stored", 60_000, async () => Number((await ch(`SELECT uniqExact(uuid) FROM events WHERE team_id = ${project.id}`))[0]![0]) === 300);
  const stored = new Set((await ch(`SELECT toString(uuid) FROM events WHERE team_id = ${project.id}`)).map(([u]) => u!));
  expect(uuids.filter((u) => !stored.has(u))).toEqual([]);
}, 120_000);
