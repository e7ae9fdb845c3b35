/** Consumer side of the kafka benchmark: messages/s reading one topic from the beginning with a fresh group. */
import type { BenchConsumer } from "./clients.ts";

export interface ConsumerFigures {
  client: string;
  messages: number;
  /** From subscribing to the last message: group join and first fetch included (what msgPerSec is based on). */
  seconds: number;
  msgPerSec: number;
  mbPerSec: number;
  /** From the first message handed over to the last: flatters clients that prefetch before their first callback. */
  steadySeconds: number;
  steadyMsgPerSec: number;
}

export async function runConsumer(c: BenchConsumer, topic: string, total: number, budgetMs: number): Promise<ConsumerFigures> {
  const start = performance.now();
  const r = await c.consume(topic, total, start + budgetMs);
  const seconds = Math.max(1e-6, (r.lastAt - start) / 1000);
  const steady = Math.max(1e-6, (r.lastAt - r.firstAt) / 1000);
  return {
    client: c.name,
    messages: r.count,
    seconds: Math.round(seconds * 1000) / 1000,
    msgPerSec: Math.round(r.count / seconds),
    mbPerSec: Math.round(r.bytes / seconds / 1e5) / 10,
    steadySeconds: Math.round(steady * 1000) / 1000,
    steadyMsgPerSec: Math.round(r.count / steady),
  };
}
