/**
 * The Kafka clients compared by the kafka benchmark, behind one small interface each: ours (librdkafka through
 * bun:ffi, lib/kafka), @platformatic/kafka and kafkajs, all pointed at the same broker with acks=all. Each runs
 * with its own defaults otherwise (ours: lib/kafka's PRODUCER_DEFAULTS / CONSUMER_DEFAULTS, as the apps use them).
 */
import { Consumer as PlatformaticConsumer, Producer as PlatformaticProducer, stringSerializers } from "@platformatic/kafka";
import { Kafka, logLevel } from "kafkajs";
import { Consumer } from "../../lib/kafka/consumer.ts";
import { Producer, type KafkaProps } from "../../lib/kafka/producer.ts";

export interface Msg {
  key: string;
  value: string;
}

/** One settled unit: `count` messages acknowledged together. */
export interface Ack {
  count: number;
  promise: Promise<unknown>;
}

export interface BenchProducer {
  readonly name: string;
  /** Hands a batch to the client; one Ack per independently acknowledged unit. */
  send(batch: Msg[]): Ack[];
  /** One message on its own (the capture path: one event, one acknowledgement). */
  sendOne(m: Msg): Promise<unknown>;
  close(): Promise<void>;
}

export interface BenchConsumer {
  readonly name: string;
  /** Consumes `topic` from the beginning with a fresh group until `total` messages arrived (or the deadline). */
  consume(topic: string, total: number, deadlineMs: number): Promise<{ count: number; bytes: number; firstAt: number; lastAt: number }>;
}

// ---- ours ----

export function oursProducer(bootstrap: string, mode: "produce" | "produceMany", props: KafkaProps = {}, label = ""): BenchProducer {
  const p = new Producer({ "bootstrap.servers": bootstrap, ...props });
  const self: BenchProducer = {
    name: `ours ${mode}()${label}`,
    send(batch) {
      const topic = topicOf(self);
      if (mode === "produceMany") return [{ count: batch.length, promise: p.produceMany(topic, batch) }];
      return batch.map((m) => ({ count: 1, promise: p.produce(topic, m.key, m.value) }));
    },
    sendOne(m) {
      return p.produce(topicOf(self), m.key, m.value);
    },
    close: () => p.close(),
  };
  return self;
}

export function oursConsumer(bootstrap: string): BenchConsumer {
  return {
    name: "ours (librdkafka FFI)",
    async consume(topic, total, deadlineMs) {
      const c = new Consumer({ "bootstrap.servers": bootstrap, "group.id": `bench-${topic}-ours-${Date.now()}` });
      c.subscribe([topic]);
      let count = 0;
      let bytes = 0;
      let firstAt = 0;
      let lastAt = 0;
      try {
        while (count < total && performance.now() < deadlineMs) {
          const msgs = await c.poll(10_000);
          if (msgs.length === 0) {
            await Bun.sleep(1);
            continue;
          }
          if (count === 0) firstAt = performance.now();
          for (const m of msgs) bytes += m.value?.length ?? 0;
          count += msgs.length;
          lastAt = performance.now();
        }
      } finally {
        await c.close();
      }
      return { count, bytes, firstAt, lastAt };
    },
  };
}

// ---- @platformatic/kafka ----

export function platformaticProducer(bootstrap: string): BenchProducer {
  const p = new PlatformaticProducer({
    clientId: "bench-platformatic",
    bootstrapBrokers: [bootstrap],
    serializers: stringSerializers,
    acks: -1,
    idempotent: true,
    autocreateTopics: true,
  });
  const self: BenchProducer = {
    name: "@platformatic/kafka",
    send(batch) {
      const topic = topicOf(self);
      return [{ count: batch.length, promise: p.send({ messages: batch.map((m) => ({ topic, key: m.key, value: m.value })) }) }];
    },
    sendOne(m) {
      return p.send({ messages: [{ topic: topicOf(self), key: m.key, value: m.value }] });
    },
    close: () => p.close(),
  };
  return self;
}

export function platformaticConsumer(bootstrap: string): BenchConsumer {
  return {
    name: "@platformatic/kafka",
    async consume(topic, total, deadlineMs) {
      const c = new PlatformaticConsumer({
        groupId: `bench-${topic}-platformatic-${Date.now()}`,
        clientId: "bench-platformatic",
        bootstrapBrokers: [bootstrap],
      });
      let count = 0;
      let bytes = 0;
      let firstAt = 0;
      let lastAt = 0;
      const stream = await c.consume({ topics: [topic], mode: "earliest", autocommit: false });
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setInterval(() => {
            if (performance.now() < deadlineMs) return;
            clearInterval(timer);
            resolve();
          }, 100);
          stream.on("data", (m: { value?: Buffer }) => {
            if (count === 0) firstAt = performance.now();
            bytes += m.value?.length ?? 0;
            count++;
            lastAt = performance.now();
            if (count === total) {
              clearInterval(timer);
              resolve();
            }
          });
          stream.on("error", (err: unknown) => {
            clearInterval(timer);
            reject(err);
          });
        });
      } finally {
        await stream.close();
        await c.close(true);
      }
      return { count, bytes, firstAt, lastAt };
    },
  };
}

// ---- kafkajs ----

export function kafkajsProducer(bootstrap: string, idempotent: boolean): BenchProducer {
  const kafka = new Kafka({ clientId: "bench-kafkajs", brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const p = kafka.producer({ idempotent, allowAutoTopicCreation: true, ...(idempotent ? { maxInFlightRequests: 1 } : {}) });
  const ready = p.connect();
  const self: BenchProducer = {
    name: idempotent ? "kafkajs (idempotent)" : "kafkajs",
    send(batch) {
      return [{ count: batch.length, promise: ready.then(() => p.send({ topic: topicOf(self), acks: -1, messages: batch })) }];
    },
    sendOne(m) {
      return ready.then(() => p.send({ topic: topicOf(self), acks: -1, messages: [m] }));
    },
    close: async () => {
      await ready;
      await p.disconnect();
    },
  };
  return self;
}

export function kafkajsConsumer(bootstrap: string): BenchConsumer {
  return {
    name: "kafkajs",
    async consume(topic, total, deadlineMs) {
      const kafka = new Kafka({ clientId: "bench-kafkajs", brokers: [bootstrap], logLevel: logLevel.NOTHING });
      const c = kafka.consumer({ groupId: `bench-${topic}-kafkajs-${Date.now()}` });
      await c.connect();
      await c.subscribe({ topic, fromBeginning: true });
      let count = 0;
      let bytes = 0;
      let firstAt = 0;
      let lastAt = 0;
      const { promise: done, resolve } = Promise.withResolvers<void>();
      await c.run({
        autoCommit: false,
        eachBatchAutoResolve: true,
        eachBatch: async ({ batch }) => {
          if (count === 0) firstAt = performance.now();
          for (const m of batch.messages) bytes += m.value?.length ?? 0;
          count += batch.messages.length;
          lastAt = performance.now();
          if (count >= total) resolve();
        },
      });
      const timer = setInterval(() => performance.now() >= deadlineMs && resolve(), 100);
      try {
        await done;
      } finally {
        clearInterval(timer);
        await c.disconnect();
      }
      return { count, bytes, firstAt, lastAt };
    },
  };
}

// ---- topic routing: each producer writes its own topic, set by the benchmark ----

const topics = new WeakMap<BenchProducer, string>();
export function useTopic(p: BenchProducer, topic: string): void {
  topics.set(p, topic);
}
function topicOf(p: BenchProducer): string {
  const t = topics.get(p);
  if (!t) throw new Error(`no topic set for ${p.name}`);
  return t;
}
