/**
 * Poison messages (undecodable, or not a CapturedEvent) go to the DLQ topic with the original key and value and
 * headers saying why and where they came from; the partition moves on.
 */
import type { Producer } from "../../lib/kafka/producer.ts";
import type { ConsumedMessage, DeliveryReport } from "../../lib/kafka/types.ts";

export class DeadLetters {
  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
  ) {}

  send(m: ConsumedMessage, reason: string, detail: string): Promise<DeliveryReport> {
    return this.producer.produce(this.topic, m.key, m.value, {
      dlq_reason: reason,
      dlq_detail: detail.slice(0, 1000),
      source_topic: m.topic,
      source_partition: String(m.partition),
      source_offset: String(m.offset),
      failed_at: new Date().toISOString(),
    });
  }
}
