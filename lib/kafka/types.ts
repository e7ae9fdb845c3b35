/** Public types of lib/kafka: mechanism only; callers choose topics and keys. */

export type Bytes = string | Uint8Array;

export interface MessageHeader {
  key: string;
  value: Uint8Array | null;
}

export interface DeliveryReport {
  topic: string;
  partition: number;
  offset: bigint;
}

export interface OutgoingMessage {
  key?: Bytes | null;
  value: Bytes | null;
  headers?: Record<string, Bytes>;
}

export interface ConsumedMessage {
  topic: string;
  partition: number;
  offset: bigint;
  key: Uint8Array | null;
  value: Uint8Array | null;
  /** Present when the consumer was created with `headers: true`. */
  headers?: MessageHeader[];
  /** Milliseconds since the epoch (producer create time or broker log-append time), -1 when unknown. */
  timestamp: number;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface TopicPartitionOffset extends TopicPartition {
  /** The next offset to read (last processed + 1), as Kafka commits it. */
  offset: bigint;
}

export type RebalanceEvent =
  | { kind: "assign"; partitions: TopicPartition[] }
  | { kind: "revoke"; partitions: TopicPartition[] };

export interface PartitionLag {
  topic: string;
  partition: number;
  /** null when the group has no committed offset for the partition. */
  committed: bigint | null;
  low: bigint;
  high: bigint;
  /** high - committed, or high - low when nothing is committed. */
  lag: bigint;
}
