import { MemoryEventSink } from "../../apps/capture/memory-sink.ts";
import { runEventSinkSuite, type Received } from "./event-sink.case.ts";

runEventSinkSuite({
  name: "MemoryEventSink",
  newSink: () => new MemoryEventSink(),
  topics: { events: "events", overflow: "events_overflow" },
  async watch(sink, topic) {
    const memory = sink as MemoryEventSink;
    const from = memory.messages.length;
    return {
      async take(n, match) {
        const got: Received[] = memory.messages
          .slice(from)
          .filter((m) => m.topic === topic)
          .map((m) => ({ key: m.key, value: m.value, partition: m.partition }))
          .filter(match);
        if (got.length < n) throw new Error(`expected ${n} messages on ${topic}, have ${got.length}`);
        return got;
      },
      async close() {},
    };
  },
});
