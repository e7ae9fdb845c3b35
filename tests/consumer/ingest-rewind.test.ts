/**
 * The ingest loop never skips a polled message. An unexpected exception while messages of a poll are being
 * accepted seeks their partitions back to the first message not yet accepted, so everything is inserted exactly
 * once and the committed offset covers all of it. A message that fails every time goes to the DLQ after three
 * tries. When even the seek fails, the loop stops (onFatal) and commits nothing past what it processed. The consumer here is a scripted fake of lib/kafka's; the real seek
 * is tested against the broker in tests/kafka/seek.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { Registry } from "prom-client";
import { Ingest } from "../../apps/consumer/ingest.ts";
import { consumerMetrics } from "../../apps/consumer/metrics.ts";
import type { DeadLetters } from "../../apps/consumer/dead-letters.ts";
import { encodeCapturedEvent } from "../../lib/events/captured-event.ts";
import type { EventRow } from "../../lib/events/event-row.ts";
import { KafkaError } from "../../lib/kafka/librdkafka.ts";
import type { ConsumedMessage, TopicPartitionOffset } from "../../lib/kafka/types.ts";
import { createLogger } from "../../lib/log/logger.ts";
import { capturedEvent } from "../support/events.ts";

const TOPIC = "events";

/** A partition log with a fetch position, like librdkafka's: poll hands out from the position on. */
class ScriptedConsumer {
  position = 0n;
  seeks: TopicPartitionOffset[][] = [];
  commits: TopicPartitionOffset[][] = [];
  constructor(
    private readonly log: ConsumedMessage[],
    private readonly seekFails = false,
  ) {}
  async poll(): Promise<ConsumedMessage[]> {
    const out = this.log.filter((m) => m.offset >= this.position);
    if (out.length > 0) this.position = out.at(-1)!.offset + 1n;
    return out;
  }
  seek(positions: TopicPartitionOffset[]): void {
    this.seeks.push(positions);
    if (this.seekFails) throw new KafkaError(-190, "seek refused");
    for (const p of positions) this.position = p.offset;
  }
  async commit(offsets: TopicPartitionOffset[]): Promise<void> {
    this.commits.push(offsets);
  }
  pause(): void {}
  resume(): void {}
  assignment() {
    return [{ topic: TOPIC, partition: 0 }];
  }
  async close(): Promise<void> {}
}

/** Five events on partition 0; reading the value of offset 2 throws the first `failures` times. */
function partitionLog(failures: number): ConsumedMessage[] {
  return Array.from({ length: 5 }, (_, i) => {
    const value = new TextEncoder().encode(encodeCapturedEvent(capturedEvent(7, i)));
    const m: ConsumedMessage = { topic: TOPIC, partition: 0, offset: BigInt(i), key: null, value, timestamp: Date.now() };
    if (i !== 2) return m;
    let left = failures;
    return Object.defineProperty(m, "value", {
      get() {
        if (left-- > 0) throw new Error("injected failure");
        return value;
      },
    });
  });
}

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

function ingestWith(rows: EventRow[], onFatal?: (err: unknown) => void, dlq: { offset: bigint; reason: string }[] = []): Ingest {
  const deadLetters = {
    send: async (m: ConsumedMessage, reason: string) => {
      dlq.push({ offset: m.offset, reason });
      return { topic: "dlq", partition: 0, offset: 0n };
    },
  } as unknown as DeadLetters;
  return new Ingest({ insert: async (batch) => void rows.push(...batch) }, deadLetters, consumerMetrics(new Registry()), createLogger("test", "silent"), {
    limits: { maxRows: 1000, maxBytes: 1 << 20, lingerMs: 20 },
    retryMaxBackoffMs: 100,
    revokeFlushTimeoutMs: 1000,
    onFatal,
  });
}

const offsetsOf = (rows: EventRow[]) => rows.map((r) => Number(r.kafka_offset)).sort((a, b) => a - b);

describe("ingest loop after an unexpected failure", () => {
  test("seeks back to the first message not accepted: every message inserted once, offset 5 committed", async () => {
    const rows: EventRow[] = [];
    const consumer = new ScriptedConsumer(partitionLog(1));
    const ingest = ingestWith(rows);
    ingest.start(consumer);
    try {
      await until("all five rows", () => rows.length >= 5);
    } finally {
      await ingest.stop(5000);
    }

    expect(consumer.seeks).toEqual([[{ topic: TOPIC, partition: 0, offset: 2n }]]);
    expect(offsetsOf(rows)).toEqual([0, 1, 2, 3, 4]);
    expect(consumer.commits.flat().at(-1)).toEqual({ topic: TOPIC, partition: 0, offset: 5n });
  }, 20_000);

  test("a message that keeps failing goes to the DLQ after three tries; the rest is inserted and committed", async () => {
    const rows: EventRow[] = [];
    const dlq: { offset: bigint; reason: string }[] = [];
    const consumer = new ScriptedConsumer(partitionLog(Number.POSITIVE_INFINITY));
    const ingest = ingestWith(rows, undefined, dlq);
    ingest.start(consumer);
    try {
      await until("offset 5 committed", () => consumer.commits.flat().some((c) => c.offset === 5n));
    } finally {
      await ingest.stop(5000);
    }

    expect(consumer.seeks.length).toBe(2);
    expect(dlq).toEqual([{ offset: 2n, reason: "ingest_error" }]);
    expect(offsetsOf(rows)).toEqual([0, 1, 3, 4]);
  }, 20_000);

  test("stops when the seek fails too: onFatal, and nothing committed past the last accepted message", async () => {
    const rows: EventRow[] = [];
    const consumer = new ScriptedConsumer(partitionLog(Number.POSITIVE_INFINITY), true);
    let fatal: unknown;
    const ingest = ingestWith(rows, (err) => (fatal = err));
    ingest.start(consumer);
    try {
      await until("onFatal", () => fatal !== undefined);
    } finally {
      await ingest.stop(5000);
    }

    expect(fatal).toBeInstanceOf(KafkaError);
    expect(offsetsOf(rows)).toEqual([0, 1]);
    const committed = consumer.commits.flat().map((c) => c.offset);
    expect(committed.every((o) => o <= 2n)).toBe(true);
  }, 20_000);
});
