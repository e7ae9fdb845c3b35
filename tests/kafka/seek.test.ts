/** Consumer.seek on the real broker: the position moves back, already-fetched messages are not handed out twice. */
import { afterAll, expect, test } from "bun:test";
import { Consumer } from "../../lib/kafka/consumer.ts";
import { KafkaError } from "../../lib/kafka/librdkafka.ts";
import { Producer } from "../../lib/kafka/producer.ts";
import type { ConsumedMessage } from "../../lib/kafka/types.ts";
import { BOOTSTRAP, consumeUntil, deleteTopics, uniqueTopic } from "./support.ts";

const topic = uniqueTopic("seek");

afterAll(async () => {
  await deleteTopics([topic]);
}, 30_000);

test("seek moves an assigned partition back, dropping what was fetched; a partition not assigned is refused", async () => {
  const producer = new Producer({ "bootstrap.servers": BOOTSTRAP });
  // One key: every message on one partition, offsets 0..19.
  await producer.produceMany(topic, Array.from({ length: 20 }, (_, i) => ({ key: "k", value: String(i) })));
  await producer.close();

  const consumer = new Consumer({ "bootstrap.servers": BOOTSTRAP, "group.id": `${topic}-g` });
  try {
    consumer.subscribe([topic]);
    // Five at a time, and only ten: the other ten are already fetched and wait in librdkafka's queue when the
    // seek comes, so the seek must drop them (they would otherwise come out before offset 5 comes again).
    const first: ConsumedMessage[] = [];
    await consumeUntil(consumer, (ms) => first.push(...ms), () => first.length >= 10, 30_000, 5);
    expect(first.map((m) => Number(m.offset))).toEqual(Array.from({ length: 10 }, (_, i) => i));
    const partition = first[0]!.partition;

    consumer.seek([{ topic, partition, offset: 5n }]);
    const again: ConsumedMessage[] = [];
    await consumeUntil(consumer, (ms) => again.push(...ms), () => again.length >= 15, 30_000);
    await Bun.sleep(300);
    again.push(...(await consumer.poll()));
    // Exactly offsets 5..19 once more, in order: nothing fetched before the seek leaks through.
    expect(again.map((m) => Number(m.offset))).toEqual(Array.from({ length: 15 }, (_, i) => i + 5));
    expect(again.map((m) => Buffer.from(m.value!).toString())).toEqual(Array.from({ length: 15 }, (_, i) => String(i + 5)));

    const err = (() => {
      try {
        consumer.seek([{ topic: `${topic}-not-subscribed`, partition: 0, offset: 0n }]);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(KafkaError);
  } finally {
    await consumer.close();
  }
}, 60_000);

test("a batch that cannot be handed out is fetched again from its start: no message skipped", async () => {
  const t = `${topic}-take`;
  const producer = new Producer({ "bootstrap.servers": BOOTSTRAP });
  await producer.produceMany(t, Array.from({ length: 20 }, (_, i) => ({ key: "k", value: String(i) })));
  await producer.close();

  const consumer = new Consumer({ "bootstrap.servers": BOOTSTRAP, "group.id": `${t}-g` });
  // Fault injection: copying the message at offset 7 out of librdkafka fails once.
  const c = consumer as unknown as { decode: (m: number) => ConsumedMessage };
  const decode = c.decode.bind(consumer);
  let failed = false;
  c.decode = (m) => {
    const msg = decode(m);
    if (msg.offset === 7n && !failed) {
      failed = true;
      throw new Error("injected decode failure");
    }
    return msg;
  };
  try {
    consumer.subscribe([t]);
    const seen: number[] = [];
    const deadline = performance.now() + 30_000;
    let errors = 0;
    while (!seen.includes(19) && performance.now() < deadline) {
      try {
        const ms = await consumer.poll();
        seen.push(...ms.map((m) => Number(m.offset)));
        if (ms.length === 0) await Bun.sleep(5);
      } catch (err) {
        expect(String(err)).toContain("injected decode failure");
        errors++;
      }
    }
    expect(failed).toBe(true);
    expect(errors).toBe(1);
    // The failed poll handed out nothing and the position went back to its first message: every offset
    // exactly once, in order.
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i));
  } finally {
    await consumer.close();
    await deleteTopics([t]);
  }
}, 60_000);
