/**
 * One set of librdkafka properties for every handle of an app (security.protocol, sasl.*, ssl.*, client.id,
 * ...), narrowed to what each kind of handle takes. librdkafka accepts a consumer-only property on a producer but
 * warns that it ignores it (CONFWARN) on every start; those are left out instead.
 */
import type { KafkaProps } from "./producer.ts";

/**
 * librdkafka's consumer-only properties: the rows with C/P = C in its CONFIGURATION.md (checked against the
 * installed librdkafka's copy by tests/kafka/props.test.ts).
 */
export const CONSUMER_ONLY_PROPERTIES: ReadonlySet<string> = new Set([
  "group.id",
  "group.instance.id",
  "partition.assignment.strategy",
  "session.timeout.ms",
  "heartbeat.interval.ms",
  "group.protocol.type",
  "coordinator.query.interval.ms",
  "max.poll.interval.ms",
  "enable.auto.commit",
  "auto.commit.interval.ms",
  "enable.auto.offset.store",
  "queued.min.messages",
  "queued.max.messages.kbytes",
  "fetch.wait.max.ms",
  "fetch.message.max.bytes",
  "max.partition.fetch.bytes",
  "fetch.max.bytes",
  "fetch.min.bytes",
  "fetch.error.backoff.ms",
  "offset.store.method",
  "isolation.level",
  "consume_cb",
  "rebalance_cb",
  "offset_commit_cb",
  "enable.partition.eof",
  "check.crcs",
  "auto.commit.enable",
  "auto.offset.reset",
  "offset.store.path",
  "offset.store.sync.interval.ms",
  "consume.callback.max.messages",
]);

/** librdkafka's producer-only properties: the rows with C/P = P. */
export const PRODUCER_ONLY_PROPERTIES: ReadonlySet<string> = new Set([
  "transactional.id",
  "transaction.timeout.ms",
  "enable.idempotence",
  "enable.gapless.guarantee",
  "queue.buffering.max.messages",
  "queue.buffering.max.kbytes",
  "queue.buffering.max.ms",
  "linger.ms",
  "message.send.max.retries",
  "retries",
  "retry.backoff.ms",
  "queue.buffering.backpressure.threshold",
  "compression.codec",
  "compression.type",
  "batch.num.messages",
  "batch.size",
  "delivery.report.only.error",
  "dr_cb",
  "dr_msg_cb",
  "sticky.partitioning.linger.ms",
  "request.required.acks",
  "acks",
  "request.timeout.ms",
  "message.timeout.ms",
  "delivery.timeout.ms",
  "queuing.strategy",
  "produce.offset.report",
  "partitioner",
  "partitioner_cb",
  "msg_order_cmp",
  "compression.level",
]);

/** The properties a consumer (or a consumer-type probe) takes: all but producer-only ones (those configure the DLQ producer). */
export function consumerProperties(props: KafkaProps): KafkaProps {
  return Object.fromEntries(Object.entries(props).filter(([k]) => !PRODUCER_ONLY_PROPERTIES.has(k)));
}

/** The properties a producer created beside a consumer takes (the DLQ producer): all but consumer-only ones. */
export function producerProperties(props: KafkaProps): KafkaProps {
  return Object.fromEntries(Object.entries(props).filter(([k]) => !CONSUMER_ONLY_PROPERTIES.has(k)));
}

/**
 * The properties of a handle that only asks the cluster (metadata, committed offsets, watermarks): everything
 * but group membership. It must never present a member's group.instance.id (the broker would fence that member).
 */
export function probeProperties(props: KafkaProps): KafkaProps {
  const membership = new Set(["group.id", "group.instance.id", "partition.assignment.strategy", "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms"]);
  return Object.fromEntries(Object.entries(consumerProperties(props)).filter(([k]) => !membership.has(k)));
}
