/** The EventSink contract against the real broker (127.0.0.1:9092, topics `events` and `events_overflow`). */
import { KafkaEventSink } from "../../apps/capture/kafka-sink.ts";
import { KafkaProbe } from "../../lib/kafka/probe.ts";
import { Producer } from "../../lib/kafka/producer.ts";
import { runEventSinkSuite } from "./event-sink.case.ts";
import { BOOTSTRAP, openTopicReader } from "./topic-reader.ts";

const decoder = new TextDecoder();

runEventSinkSuite({
  name: "KafkaEventSink",
  newSink: () =>
    new KafkaEventSink(
      new Producer({ "bootstrap.servers": BOOTSTRAP, "message.timeout.ms": 10_000 }),
      new KafkaProbe({ "bootstrap.servers": BOOTSTRAP }),
      "events",
    ),
  topics: { events: "events", overflow: "events_overflow" },
  async watch(_sink, topic) {
    const reader = await openTopicReader(topic);
    return {
      async take(n, match) {
        const msgs = await reader.readUntil(
          (all) => all.filter((m) => match({ key: null, value: decoder.decode(m.value!), partition: m.partition })).length >= n,
          30_000,
        );
        return msgs
          .map((m) => ({ key: m.key === null ? null : decoder.decode(m.key), value: decoder.decode(m.value!), partition: m.partition }))
          .filter(match);
      },
      close: () => reader.close(),
    };
  },
});
