/**
 * apps/capture against the real stack: Kafka (topic `events`, 12 partitions), PostgreSQL, Redis. Events are read
 * back from `events` with lib/kafka's Consumer, starting at the end of every partition.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import LZString from "lz-string";
import { PostHog } from "posthog-node";
import { decodeCapturedEvent, type CapturedEvent } from "../../lib/events/captured-event.ts";
import type { ConsumedMessage } from "../../lib/kafka/types.ts";
import type { Project } from "../../lib/projects/project.ts";
import { freePort, newProject, POSTGRES_URL, REDIS_URL, startTestCapture, waitReady } from "./capture-stack.ts";
import { murmur2Partition, openTopicReader } from "./topic-reader.ts";

const decoder = new TextDecoder();
const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

let project: Project;
let capture: ReturnType<typeof startTestCapture>;

beforeAll(async () => {
  project = await newProject("capture-integration");
  capture = startTestCapture();
  await waitReady(capture.url, 30_000);
});
afterAll(() => capture?.stop());

function decoded(m: ConsumedMessage): CapturedEvent {
  const r = decodeCapturedEvent(m.value!);
  if (!r.ok) throw new Error(`undecodable message: ${r.detail}`);
  return r.event;
}

/** Reads `events` until `n` messages whose event name starts with `prefix` arrived. */
async function readEvents(reader: Awaited<ReturnType<typeof openTopicReader>>, prefix: string, n: number): Promise<ConsumedMessage[]> {
  const mine = (all: ConsumedMessage[]) => all.filter((m) => decoder.decode(m.value!).includes(`"event":"${prefix}`));
  return mine(await reader.readUntil((all) => mine(all).length >= n, 30_000));
}

describe("capture -> Kafka `events`", () => {
  test("a batch's events arrive keyed by distinct_id, on murmur2(key) % partitions, as CapturedEvents", async () => {
    const reader = await openTopicReader("events");
    try {
      const name = `it-batch-${run}`;
      const batch = Array.from({ length: 30 }, (_, i) => ({
        event: name,
        distinct_id: `${run}-user-${i % 7}-ü`,
        properties: { i, $lib: "test" },
        timestamp: new Date(Date.now() - i * 1000).toISOString(),
      }));
      const res = await fetch(`${capture.url}/batch`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ api_key: project.token, batch, sent_at: new Date().toISOString() }),
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 1 });
      const msgs = await readEvents(reader, name, 30);
      expect(msgs).toHaveLength(30);
      expect(reader.partitions).toBe(12);
      for (const m of msgs) {
        const e = decoded(m);
        expect(decoder.decode(m.key!)).toBe(e.distinct_id);
        expect(m.partition).toBe(murmur2Partition(m.key!, reader.partitions));
        expect(e.team_id).toBe(project.id);
        expect(e.event).toBe(name);
        expect(e.ip).toBe("127.0.0.1");
      }
      expect(new Set(msgs.map((m) => decoded(m).uuid)).size).toBe(30);
      expect(msgs.map((m) => (decoded(m).properties as { i: number }).i).sort((a, b) => a - b)).toEqual(batch.map((_, i) => i));
    } finally {
      await reader.close();
    }
  });

  test("posthog-js bodies: gzip-js (text/plain) and lz64 (form) are accepted and arrive", async () => {
    const reader = await openTopicReader("events");
    try {
      const name = `it-js-${run}`;
      const jsEvent = (n: number) => ({
        event: name,
        properties: { distinct_id: `${run}-js`, token: project.token, $lib: "web", n, $current_url: "https://example.com/" },
        timestamp: new Date().toISOString(),
        uuid: Bun.randomUUIDv7(),
      });
      const query = `ip=1&_=${Date.now()}&ver=1.200.0`;
      const gz = await fetch(`${capture.url}/e/?${query}&compression=gzip-js`, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: gzipSync(JSON.stringify([jsEvent(1), jsEvent(2)])),
      });
      expect(gz.status).toBe(200);
      const lz = await fetch(`${capture.url}/e/?${query}&compression=lz64`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: `data=${encodeURIComponent(LZString.compressToBase64(JSON.stringify(jsEvent(3))))}`,
      });
      expect(lz.status).toBe(200);
      const beacon = await fetch(`${capture.url}/e/?${query}&beacon=1&data=${encodeURIComponent(Buffer.from(JSON.stringify(jsEvent(4))).toString("base64"))}`);
      expect(beacon.status).toBe(204);
      const msgs = await readEvents(reader, name, 4);
      expect(msgs.map((m) => (decoded(m).properties as { n: number }).n).sort()).toEqual([1, 2, 3, 4]);
      for (const m of msgs) expect(decoder.decode(m.key!)).toBe(`${run}-js`);
    } finally {
      await reader.close();
    }
  });

  test("the official posthog-node SDK delivers capture and identify", async () => {
    const reader = await openTopicReader("events");
    const client = new PostHog(project.token, { host: capture.url, flushAt: 10, flushInterval: 0, fetchRetryCount: 0 });
    const errors: unknown[] = [];
    client.on("error", (err) => errors.push(err));
    try {
      const name = `it-node-${run}`;
      client.capture({ distinctId: `${run}-node`, event: name, properties: { plan: "pro" } });
      client.identify({ distinctId: `${run}-node`, properties: { email: "a@example.com", name } });
      await client.shutdown(10_000);
      expect(errors).toEqual([]);
      const mine = (all: ConsumedMessage[]) => all.filter((m) => m.key && decoder.decode(m.key) === `${run}-node`);
      const msgs = mine(await reader.readUntil((all) => mine(all).length >= 2, 30_000));
      const byName = new Map(msgs.map((m) => [decoded(m).event, decoded(m)]));
      expect(byName.get(name)?.properties).toMatchObject({ plan: "pro", $lib: "posthog-node" });
      expect(byName.get("$identify")?.$set).toMatchObject({ email: "a@example.com", name });
      expect(byName.get(name)?.team_id).toBe(project.id);
    } finally {
      await reader.close();
    }
  });
});

describe("operations", () => {
  test("/health, /ready (Kafka, PostgreSQL, Redis) and /metrics", async () => {
    expect((await fetch(`${capture.url}/health`)).status).toBe(200);
    const ready = (await (await fetch(`${capture.url}/ready`)).json()) as { status: string; dependencies: Record<string, { ok: boolean }> };
    expect(ready.status).toBe("ready");
    expect(Object.keys(ready.dependencies).sort()).toEqual(["kafka", "postgres", "redis"]);
    const metrics = await (await fetch(`${capture.url}/metrics`)).text();
    for (const name of [
      "capture_requests_total",
      "capture_events_accepted_total",
      "capture_produce_duration_seconds_bucket",
      "capture_kafka_queue_depth",
      "capture_step_seconds_total",
    ]) {
      expect(metrics).toContain(name);
    }
  });

  test("main.ts: SIGTERM answers the in-flight request (200), flushes, exits 0", async () => {
    const port = await freePort();
    const proc = Bun.spawn(["bun", join(import.meta.dir, "../../apps/capture/main.ts")], {
      env: {
        ...process.env,
        CAPTURE_PORT: String(port),
        CAPTURE_HOST: "127.0.0.1",
        POSTGRES_URL,
        REDIS_URL,
        LOG_LEVEL: "info",
        // Deliveries wait 700 ms in librdkafka, so the request is certainly in flight when SIGTERM arrives.
        CAPTURE_KAFKA_LINGER_MS: "700",
        CAPTURE_DRAIN_MS: "0",
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitReady(url, 30_000);
      const inFlight = fetch(`${url}/e`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ api_key: project.token, event: `it-sigterm-${run}`, distinct_id: `${run}-sig` }),
      });
      await Bun.sleep(250);
      proc.kill("SIGTERM");
      const res = await inFlight;
      expect(res.status).toBe(200);
      expect(await proc.exited).toBe(0);
      const log = await new Response(proc.stdout).text();
      expect(log).toContain("capture stopped");
    } finally {
      if (proc.exitCode === null) proc.kill("SIGKILL");
    }
  });
});
