/**
 * Blocking cluster queries (metadata, committed offsets, watermarks). librdkafka only offers them as calls that
 * wait for the broker, so the apps run them in a worker thread (see probe.ts); CLIs may call them directly.
 */
import { CString, read } from "bun:ffi";
import {
  buildConf,
  buildPartitionList,
  cstr,
  KafkaError,
  lib,
  newClient,
  RD_KAFKA_CONSUMER,
  RD_KAFKA_OFFSET_INVALID,
  readPartitionList,
} from "./librdkafka.ts";
import type { KafkaProps } from "./producer.ts";
import type { PartitionLag } from "./types.ts";

/** struct rd_kafka_metadata / rd_kafka_metadata_topic (rdkafka.h), checked by tests/kafka/layout.test.ts. */
export const METADATA = { broker_cnt: 0, brokers: 8, topic_cnt: 16, topics: 24, orig_broker_id: 32, orig_broker_name: 40 } as const;
export const METADATA_TOPIC = { topic: 0, partition_cnt: 8, partitions: 16, err: 24, size: 32 } as const;

export interface ClusterMetadata {
  brokers: number;
  origBrokerId: number;
  topics: { name: string; partitions: number; err: number }[];
}

/** A short-lived handle for blocking queries; a consumer type so committed offsets can be asked for a group. */
export class ClusterClient {
  readonly rk: number;
  constructor(
    private readonly props: KafkaProps,
    private readonly group = "ingest-probe",
  ) {
    this.rk = newClient(RD_KAFKA_CONSUMER, buildConf({ ...props, "group.id": group, "enable.auto.commit": false }));
  }

  /** Metadata for one topic, or for all topics when `topic` is omitted. Throws on timeout. */
  metadata(timeoutMs: number, topic?: string): ClusterMetadata {
    const l = lib();
    const rkt = topic ? (l.rd_kafka_topic_new(this.rk as never, cstr(topic), null) as unknown as number) : 0;
    const out = new BigUint64Array(1);
    try {
      const code = l.rd_kafka_metadata(this.rk as never, topic ? 0 : 1, (rkt || null) as never, out, timeoutMs);
      if (code !== 0) throw new KafkaError(code, "metadata request");
      const md = Number(out[0]);
      try {
        const topics = [];
        const cnt = read.i32(md as never, METADATA.topic_cnt);
        const arr = read.ptr(md as never, METADATA.topics);
        for (let i = 0; i < cnt; i++) {
          const t = arr + i * METADATA_TOPIC.size;
          topics.push({
            name: new CString(read.ptr(t as never, METADATA_TOPIC.topic) as never).toString(),
            partitions: read.i32(t as never, METADATA_TOPIC.partition_cnt),
            err: read.i32(t as never, METADATA_TOPIC.err),
          });
        }
        return { brokers: read.i32(md as never, METADATA.broker_cnt), origBrokerId: read.i32(md as never, METADATA.orig_broker_id), topics };
      } finally {
        l.rd_kafka_metadata_destroy(md as never);
      }
    } finally {
      if (rkt) l.rd_kafka_topic_destroy(rkt as never);
    }
  }

  /** Per-partition committed offset of `group`, watermarks and lag, like kafka-consumer-groups --describe. */
  lag(group: string, topic: string, timeoutMs: number): PartitionLag[] {
    const l = lib();
    const md = this.metadata(timeoutMs, topic);
    const t = md.topics.find((x) => x.name === topic);
    if (!t || t.err !== 0 || t.partitions <= 0) throw new KafkaError(t?.err || -188, `topic ${topic} not found`);
    // Committed offsets are asked for through a handle whose group.id is the group being inspected.
    const asker = group === this.group ? this : null;
    const handle = asker ?? new ClusterClient(this.props, group);
    try {
      const list = buildPartitionList(Array.from({ length: t.partitions }, (_, partition) => ({ topic, partition })));
      let committed;
      try {
        const code = l.rd_kafka_committed(handle.rk as never, list as never, timeoutMs);
        if (code !== 0) throw new KafkaError(code, `committed offsets of ${group}`);
        committed = readPartitionList(list);
      } finally {
        l.rd_kafka_topic_partition_list_destroy(list as never);
      }
      const low = new BigInt64Array(1);
      const high = new BigInt64Array(1);
      return committed.map((c) => {
        const code = l.rd_kafka_query_watermark_offsets(this.rk as never, cstr(topic), c.partition, low, high, timeoutMs);
        if (code !== 0) throw new KafkaError(code, `watermarks of ${topic}[${c.partition}]`);
        const has = c.offset !== RD_KAFKA_OFFSET_INVALID && c.offset >= 0n;
        const h = high[0]!;
        const lo = low[0]!;
        return { topic, partition: c.partition, committed: has ? c.offset : null, low: lo, high: h, lag: has ? h - c.offset : h - lo };
      });
    } finally {
      if (!asker) handle.destroy();
    }
  }

  destroy(): void {
    lib().rd_kafka_destroy(this.rk as never);
  }
}
