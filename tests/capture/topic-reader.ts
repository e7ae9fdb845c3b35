/**
 * Reads what a test produced to a shared topic (e.g. `events`, which holds everybody's data) without reading the
 * topic from the start: a fresh consumer group first commits the current end of every partition, then
 * subscribes, so it sees exactly the messages produced after `openTopicReader` returned.
 */
import { Consumer } from "../../lib/kafka/consumer.ts";
import { ClusterClient } from "../../lib/kafka/metadata.ts";
import type { ConsumedMessage } from "../../lib/kafka/types.ts";

export const BOOTSTRAP = process.env.KAFKA_BOOTSTRAP_SERVERS ?? "127.0.0.1:9092";

export interface TopicReader {
  partitions: number;
  /** Polls until `done(all messages so far)` or the timeout; returns everything read. */
  readUntil(done: (msgs: ConsumedMessage[]) => boolean, timeoutMs: number): Promise<ConsumedMessage[]>;
  close(): Promise<void>;
}

export async function openTopicReader(topic: string): Promise<TopicReader> {
  const group = `test-capture-reader-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e9).toString(36)}`;
  const client = new ClusterClient({ "bootstrap.servers": BOOTSTRAP }, group);
  let ends;
  try {
    ends = client.lag(group, topic, 10_000);
  } finally {
    client.destroy();
  }
  const consumer = new Consumer({ "bootstrap.servers": BOOTSTRAP, "group.id": group, "auto.offset.reset": "earliest" });
  await consumer.commit(ends.map((p) => ({ topic, partition: p.partition, offset: p.high })));
  consumer.subscribe([topic]);
  const seen: ConsumedMessage[] = [];
  return {
    partitions: ends.length,
    async readUntil(done, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      while (!done(seen)) {
        if (performance.now() > deadline) throw new Error(`readUntil(${topic}): condition not met after ${timeoutMs} ms (${seen.length} read)`);
        const msgs = await consumer.poll(10_000);
        if (msgs.length) seen.push(...msgs);
        else await Bun.sleep(10);
      }
      return seen;
    },
    close: () => consumer.close(),
  };
}

/** Kafka's default partitioner for keyed messages (Java murmur2; librdkafka's `murmur2_random`). */
export function murmur2Partition(key: Uint8Array, partitions: number): number {
  const seed = 0x9747b28c;
  const m = 0x5bd1e995;
  const r = 24;
  const length = key.length;
  let h = (seed ^ length) | 0;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = (key[i4]! & 0xff) | ((key[i4 + 1]! & 0xff) << 8) | ((key[i4 + 2]! & 0xff) << 16) | ((key[i4 + 3]! & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const rest = length & 3;
  const base = length4 * 4;
  if (rest === 3) h ^= (key[base + 2]! & 0xff) << 16;
  if (rest >= 2) h ^= (key[base + 1]! & 0xff) << 8;
  if (rest >= 1) {
    h ^= key[base]! & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return (h & 0x7fffffff) % partitions;
}
