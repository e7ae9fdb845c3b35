/**
 * EventSink over lib/kafka's Producer (librdkafka: acks=all, idempotent). `publish` resolves when every
 * message's delivery report arrived. Topic and key were decided by the pipeline; this only hands them over.
 * /ready's broker check is a metadata request, run by KafkaProbe in a worker so it never blocks requests.
 */
import type { KafkaError } from "../../lib/kafka/librdkafka.ts";
import type { KafkaProbe } from "../../lib/kafka/probe.ts";
import type { Producer } from "../../lib/kafka/producer.ts";
import { EventSinkError, type EventSink, type OutgoingEvent } from "./event-sink.ts";

/** Broker/librdkafka codes that no retry of the same message can fix: MSG_SIZE_TOO_LARGE, RECORD_LIST_TOO_LARGE. */
const TOO_LARGE = new Set([10, 18]);

export class KafkaEventSink implements EventSink {
  constructor(
    private readonly producer: Producer,
    private readonly probe: Pick<KafkaProbe, "metadata" | "close">,
    private readonly pingTopic: string,
  ) {}

  async publish(batch: OutgoingEvent[]): Promise<void> {
    if (batch.length === 0) return;
    const topic = batch[0]!.topic;
    try {
      if (batch.every((m) => m.topic === topic)) {
        await this.producer.produceMany(topic, batch);
      } else {
        const byTopic = Map.groupBy(batch, (m) => m.topic);
        await Promise.all([...byTopic].map(([t, messages]) => this.producer.produceMany(t, messages)));
      }
    } catch (err) {
      throw toSinkError(err);
    }
  }

  queueDepth(): number {
    return this.producer.outstanding();
  }

  async ping(timeoutMs: number): Promise<void> {
    const md = await this.probe.metadata(timeoutMs, this.pingTopic);
    const t = md.topics.find((x) => x.name === this.pingTopic);
    if (!t || t.err !== 0 || t.partitions === 0) throw new Error(`topic ${this.pingTopic} is not available (err ${t?.err})`);
  }

  async close(timeoutMs: number): Promise<void> {
    try {
      await this.producer.close(timeoutMs);
    } finally {
      this.probe.close();
    }
  }
}

function toSinkError(err: unknown): EventSinkError {
  const k = err as Partial<KafkaError>;
  if (typeof k.code === "number") {
    if (TOO_LARGE.has(k.code)) return new EventSinkError("too_large", k.message ?? "message too large", { cause: err });
    return new EventSinkError(k.retriable ? "retriable" : "fatal", k.message ?? String(err), { cause: err });
  }
  return new EventSinkError("fatal", err instanceof Error ? err.message : String(err), { cause: err });
}
