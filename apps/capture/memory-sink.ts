/**
 * An EventSink that keeps messages in memory, assigning partitions and offsets like a topic would, so unit tests
 * see what Kafka would receive. Failures and slowness are injectable to test the 413/503 paths.
 */
import { EventSinkError, type EventSink, type OutgoingEvent } from "./event-sink.ts";

export interface StoredMessage extends OutgoingEvent {
  partition: number;
  offset: number;
}

export interface MemorySinkOptions {
  partitions?: number;
  /** Bytes above which a value is refused as too large (Kafka's message.max.bytes). */
  maxMessageBytes?: number;
}

export class MemoryEventSink implements EventSink {
  readonly messages: StoredMessage[] = [];
  /** When set, the next publish calls fail with it (until cleared). */
  failWith: EventSinkError | null = null;
  /** When set, publish waits on it before storing (e.g. a never-resolving promise to simulate a dead broker). */
  delay: Promise<void> | null = null;
  #pending = 0;
  #closed = false;
  readonly #partitions: number;
  readonly #maxMessageBytes: number;
  readonly #offsets = new Map<string, number>();
  #roundRobin = 0;

  constructor(opts: MemorySinkOptions = {}) {
    this.#partitions = opts.partitions ?? 12;
    this.#maxMessageBytes = opts.maxMessageBytes ?? 1_000_000;
  }

  async publish(batch: OutgoingEvent[]): Promise<void> {
    if (this.#closed) throw new EventSinkError("fatal", "sink is closed");
    this.#pending += batch.length;
    try {
      if (this.delay) await this.delay;
      if (this.failWith) throw this.failWith;
      for (const m of batch) {
        if (Buffer.byteLength(m.value) > this.#maxMessageBytes) {
          throw new EventSinkError("too_large", `message of ${Buffer.byteLength(m.value)} bytes exceeds ${this.#maxMessageBytes}`);
        }
      }
      for (const m of batch) {
        const partition = m.key === null ? this.#roundRobin++ % this.#partitions : partitionFor(m.key, this.#partitions);
        const tp = `${m.topic}/${partition}`;
        const offset = this.#offsets.get(tp) ?? 0;
        this.#offsets.set(tp, offset + 1);
        this.messages.push({ ...m, partition, offset });
      }
    } finally {
      this.#pending -= batch.length;
    }
  }

  queueDepth(): number {
    return this.#pending;
  }

  async ping(): Promise<void> {
    if (this.#closed) throw new Error("sink is closed");
    if (this.failWith) throw this.failWith;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** Messages of one topic, in order. */
  topic(name: string): StoredMessage[] {
    return this.messages.filter((m) => m.topic === name);
  }
}

/** Stable key -> partition (not Kafka's murmur2; only "same key, same partition" matters here). */
function partitionFor(key: string, partitions: number): number {
  return Number(Bun.hash.crc32(key) % partitions);
}
