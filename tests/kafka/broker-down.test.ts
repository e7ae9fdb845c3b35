/**
 * Failure surfaces of the Producer:
 *  - QUEUE_FULL is back-pressure: with a tiny local queue, produce() beyond it returns an already-rejected
 *    promise (code -184), never a silent drop; produceMany() rejects with it too.
 *  - The broker is stopped while we produce (message.timeout.ms = 5000): the promises reject with
 *    KafkaError _MSG_TIMED_OUT (-192) within message.timeout.ms plus a margin; after the broker is back the same
 *    Producer instance delivers again.
 * The broker is shared with other engineers: it is stopped in one test only, for as short as possible, and
 * restarted in a finally block (and again in afterAll should that have failed).
 */
import { afterAll, expect, test } from "bun:test";
import { ERR, KafkaError } from "../../lib/kafka/librdkafka.ts";
import { Producer } from "../../lib/kafka/producer.ts";
import { BOOTSTRAP, deleteTopics, STACK, uniqueTopic, waitFor } from "./support.ts";

const topic = uniqueTopic("broker-down");
const MESSAGE_TIMEOUT_MS = 5000;
/** librdkafka scans for timed-out messages once a second; deliveries then wait for our next poll (1 ms). */
const MARGIN_MS = 2000;

async function stack(action: "stop" | "start"): Promise<void> {
  const proc = Bun.spawn([STACK, action, "kafka"], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`stack.sh ${action} kafka exited ${code}: ${out}${err}`);
}

afterAll(async () => {
  // Should the test's own finally have failed to bring the broker back, try once more: others depend on it.
  await stack("start");
  await deleteTopics([topic]);
}, 120_000);

test("QUEUE_FULL rejects at once when queue.buffering.max.messages is tiny", async () => {
  const producer = new Producer({
    "bootstrap.servers": BOOTSTRAP,
    "queue.buffering.max.messages": 10,
    // Keep the first ten queued locally while the rest are offered.
    "linger.ms": 500,
  });
  try {
    const promises = Array.from({ length: 50 }, (_, i) => producer.produce(topic, `k${i}`, `v${i}`));
    // Synchronously, before any delivery could have happened: exactly the overflow is already rejected.
    const states = promises.map((p) => Bun.peek.status(p));
    expect(states.slice(0, 10)).toEqual(Array(10).fill("pending"));
    expect(states.slice(10)).toEqual(Array(40).fill("rejected"));
    const settled = await Promise.allSettled(promises);
    expect(settled.slice(0, 10).every((s) => s.status === "fulfilled")).toBe(true);
    for (const s of settled.slice(10)) {
      expect(s.status).toBe("rejected");
      const err = (s as PromiseRejectedResult).reason;
      expect(err).toBeInstanceOf(KafkaError);
      expect(err.code).toBe(ERR._QUEUE_FULL);
      expect(err.codeName).toBe("_QUEUE_FULL");
      expect(err.retriable).toBe(true);
    }

    // produceMany: the batch is rejected with QUEUE_FULL (after the part that fitted was delivered).
    const many = producer.produceMany(topic, Array.from({ length: 50 }, (_, i) => ({ key: `m${i}`, value: `w${i}` })));
    const err = await many.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KafkaError);
    expect((err as KafkaError).code).toBe(ERR._QUEUE_FULL);
    // Once the queue drained, the same producer accepts messages again.
    expect((await producer.produce(topic, "after", "full")).offset).toBeGreaterThanOrEqual(0n);
    expect(producer.inFlight()).toBe(0);
  } finally {
    await producer.close();
  }
}, 30_000);

test("broker stopped while producing: _MSG_TIMED_OUT within message.timeout.ms, then the same producer works again", async () => {
  const producer = new Producer({ "bootstrap.servers": BOOTSTRAP, "message.timeout.ms": MESSAGE_TIMEOUT_MS });
  interface Outcome {
    sentAt: number;
    settledAt?: number;
    error?: unknown;
  }
  const outcomes: Outcome[] = [];
  try {
    // Warm up: topic created, leader known, connection open.
    await producer.produce(topic, "warm", "up");

    let producing = true;
    const loop = (async () => {
      let i = 0;
      while (producing) {
        const o: Outcome = { sentAt: performance.now() };
        outcomes.push(o);
        producer.produce(topic, `k${i % 100}`, `v${i++}`).then(
          () => (o.settledAt = performance.now()),
          (e: unknown) => {
            o.settledAt = performance.now();
            o.error = e;
          },
        );
        await Bun.sleep(25);
      }
    })();

    let downAt = 0;
    let restartAt = Number.POSITIVE_INFINITY;
    await Bun.sleep(300);
    try {
      await stack("stop");
      downAt = performance.now();
      // Messages sent from now on cannot be delivered: wait until a good number of them timed out.
      await waitFor(
        "messages produced while the broker is down to time out",
        () => outcomes.filter((o) => o.sentAt > downAt && o.settledAt !== undefined).length >= 20,
        MESSAGE_TIMEOUT_MS + MARGIN_MS + 5000,
      );
      producing = false;
      await loop;
    } finally {
      producing = false;
      restartAt = performance.now();
      await stack("start");
    }

    const failed = outcomes.filter((o) => o.error !== undefined);
    const sentWhileDown = outcomes.filter((o) => o.sentAt > downAt);
    expect(sentWhileDown.length).toBeGreaterThanOrEqual(20);
    // Everything offered while the broker was down and settled before it came back failed, and every failure is
    // a timeout. (Messages still waiting when the broker restarts may legitimately be delivered then.)
    for (const o of sentWhileDown) if (o.settledAt !== undefined && o.settledAt < restartAt) expect(o.error).toBeDefined();
    for (const o of failed) {
      expect(o.error).toBeInstanceOf(KafkaError);
      const e = o.error as KafkaError;
      expect({ code: e.code, codeName: e.codeName }).toEqual({ code: ERR._MSG_TIMED_OUT, codeName: "_MSG_TIMED_OUT" });
      expect(e.retriable).toBe(true);
      // Within message.timeout.ms of produce(), plus the margin.
      expect(o.settledAt! - o.sentAt).toBeLessThanOrEqual(MESSAGE_TIMEOUT_MS + MARGIN_MS);
    }
    const latencies = failed.map((o) => Math.round(o.settledAt! - o.sentAt)).sort((x, y) => x - y);
    console.log(`broker-down: ${failed.length} timed out after ${latencies[0]}..${latencies.at(-1)} ms (message.timeout.ms ${MESSAGE_TIMEOUT_MS})`);

    // The broker is back: the same instance delivers again (after reconnecting; retry while it reconnects).
    let delivered = false;
    const until = performance.now() + 60_000;
    while (!delivered && performance.now() < until) {
      try {
        await producer.produce(topic, "after", "restart");
        delivered = true;
      } catch (err) {
        expect((err as KafkaError).code).toBe(ERR._MSG_TIMED_OUT);
      }
    }
    expect(delivered).toBe(true);
    const reports = await producer.produceMany(topic, Array.from({ length: 1000 }, (_, i) => ({ key: `a${i}`, value: `after-${i}` })));
    expect(reports.length).toBe(1000);
    // Messages still outstanding from the outage settle too: nothing stays pending.
    await waitFor("every promise to settle", () => outcomes.every((o) => o.settledAt !== undefined) && producer.inFlight() === 0, 15_000);
  } finally {
    await producer.close();
  }
}, 150_000);
