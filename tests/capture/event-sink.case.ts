/**
 * One behavioural suite for every EventSink (in-memory and Kafka): what capture relies on from a sink.
 * Each implementation's test file calls `runEventSinkSuite` with a harness.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { EventSinkError, type EventSink } from "../../apps/capture/event-sink.ts";

export interface Received {
  key: string | null;
  value: string;
  partition: number;
}

export interface Watch {
  /** Messages that arrived on the watched topic since `watch` returned, once `n` of them are there. */
  take(n: number, match: (r: Received) => boolean): Promise<Received[]>;
  close(): Promise<void>;
}

export interface SinkHarness {
  name: string;
  newSink(): EventSink;
  topics: { events: string; overflow: string };
  watch(sink: EventSink, topic: string): Promise<Watch>;
}

export function runEventSinkSuite(h: SinkHarness): void {
  describe(`EventSink contract: ${h.name}`, () => {
    const sink = h.newSink();
    const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
    afterAll(() => sink.close(5000));

    test("publish resolves once stored; key and value arrive intact, same key on one partition", async () => {
      const w = await h.watch(sink, h.topics.events);
      try {
        const batch = Array.from({ length: 20 }, (_, i) => ({
          topic: h.topics.events,
          key: `${run}-user-${i % 4}`,
          value: JSON.stringify({ run, i, text: "héllo ✓" }),
        }));
        await sink.publish(batch);
        const got = await w.take(20, (r) => r.value.includes(run));
        expect(got.map((r) => r.value).sort()).toEqual(batch.map((b) => b.value).sort());
        const partitionsByKey = new Map<string, Set<number>>();
        for (const r of got) {
          expect(r.key).toBe(`${run}-user-${(JSON.parse(r.value) as { i: number }).i % 4}`);
          partitionsByKey.set(r.key!, (partitionsByKey.get(r.key!) ?? new Set()).add(r.partition));
        }
        for (const set of partitionsByKey.values()) expect(set.size).toBe(1);
      } finally {
        await w.close();
      }
    });

    test("messages without key (overflow) and several topics in one batch", async () => {
      const wo = await h.watch(sink, h.topics.overflow);
      const we = await h.watch(sink, h.topics.events);
      try {
        await sink.publish([
          { topic: h.topics.overflow, key: null, value: JSON.stringify({ run, overflow: 1 }) },
          { topic: h.topics.events, key: `${run}-k`, value: JSON.stringify({ run, events: 1 }) },
        ]);
        const [o] = await wo.take(1, (r) => r.value.includes(run));
        expect(o!.key).toBeNull();
        const [e] = await we.take(1, (r) => r.value.includes(run));
        expect(e!.key).toBe(`${run}-k`);
      } finally {
        await wo.close();
        await we.close();
      }
    });

    test("an empty batch resolves", async () => {
      await sink.publish([]);
    });

    test("a message over the size limit fails as too_large", async () => {
      const value = JSON.stringify({ run, pad: "x".repeat(1_200_000) });
      const err = await sink.publish([{ topic: h.topics.events, key: "big", value }]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EventSinkError);
      expect((err as EventSinkError).failure).toBe("too_large");
    });

    test("queue depth is a number and drains to 0 once acknowledged; ping answers", async () => {
      await sink.publish([{ topic: h.topics.events, key: "depth", value: JSON.stringify({ run }) }]);
      expect(sink.queueDepth()).toBe(0);
      await sink.ping(5000);
    });

    test("after close, publish fails", async () => {
      const other = h.newSink();
      await other.close(5000);
      const err = await other.publish([{ topic: h.topics.events, key: "k", value: "{}" }]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EventSinkError);
    });
  });
}
