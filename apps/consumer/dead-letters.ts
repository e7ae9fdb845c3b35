/**
 * Poison messages (undecodable, not a CapturedEvent, or rows ClickHouse rejected) go to the DLQ topic with the
 * original key and value and headers saying why and where they came from; the partition moves on.
 */
import { KafkaError } from "../../lib/kafka/librdkafka.ts";
import type { Producer } from "../../lib/kafka/producer.ts";
import type { ConsumedMessage, DeliveryReport } from "../../lib/kafka/types.ts";

/** MSG_SIZE_TOO_LARGE, RECORD_LIST_TOO_LARGE: the same message can never be written. */
const TOO_LARGE = new Set([10, 18]);
/** What is kept of a value too large for the DLQ topic. */
export const TRUNCATED_VALUE_BYTES = 65_536;

export class DeadLetters {
  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
  ) {}

  async send(m: ConsumedMessage, reason: string, detail: string): Promise<DeliveryReport> {
    const headers = {
      dlq_reason: reason,
      dlq_detail: detail.slice(0, 1000),
      source_topic: m.topic,
      source_partition: String(m.partition),
      source_offset: String(m.offset),
      failed_at: new Date().toISOString(),
    };
    try {
      return await this.producer.produce(this.topic, m.key, m.value, headers);
    } catch (err) {
      // A value near the size limit of the source topic plus our headers can exceed the DLQ's: retrying it would
      // stall the partition forever. Keep its beginning and say how long it was; the source offset finds the rest.
      if (!(err instanceof KafkaError) || !TOO_LARGE.has(err.code) || !m.value) throw err;
      return await this.producer.produce(this.topic, m.key, m.value.subarray(0, TRUNCATED_VALUE_BYTES), { ...headers, dlq_truncated_from: String(m.value.length) });
    }
  }
}
