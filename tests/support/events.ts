/** Builds CapturedEvents (the Kafka value format) and produces them straight to Kafka for consumer tests. */
import { type CapturedEvent, encodeCapturedEvent } from "../../lib/events/captured-event.ts";
import { Producer } from "../../lib/kafka/producer.ts";
import { KAFKA } from "./stack.ts";

export const EVENT_NAMES = ["$pageview", "signup", "purchase", "click"] as const;

export function capturedEvent(team: number, i: number, at = new Date()): CapturedEvent {
  const iso = at.toISOString();
  return {
    v: 1,
    uuid: crypto.randomUUID(),
    team_id: team,
    event: EVENT_NAMES[i % EVENT_NAMES.length]!,
    distinct_id: `user-${i % 997}`,
    timestamp: iso,
    properties: { $current_url: `https://example.com/p/${i % 13}`, i, plan: i % 3 ? "free" : "pro", beta: i % 2 === 0 },
    ip: "127.0.0.1",
    received_at: iso,
  };
}

/** Produces `n` events for `team` to `topic`; returns the count per event name (what a 202 promised). */
export async function produceEvents(topic: string, team: number, n: number, from = 0): Promise<Map<string, number>> {
  const producer = new Producer({ "bootstrap.servers": KAFKA });
  const counts = new Map<string, number>();
  try {
    for (let start = from; start < from + n; start += 10_000) {
      const chunk = [];
      for (let i = start; i < Math.min(from + n, start + 10_000); i++) {
        const e = capturedEvent(team, i);
        counts.set(e.event, (counts.get(e.event) ?? 0) + 1);
        chunk.push({ key: e.distinct_id, value: encodeCapturedEvent(e) });
      }
      await producer.produceMany(topic, chunk);
    }
  } finally {
    await producer.close();
  }
  return counts;
}

export function mergeCounts(a: Map<string, number>, b: Map<string, number>): Map<string, number> {
  const out = new Map(a);
  for (const [k, v] of b) out.set(k, (out.get(k) ?? 0) + v);
  return out;
}

/**
 * Events that decode (they are valid CapturedEvents) but that ClickHouse refuses to store: what a capture
 * without sanitisation would let through. `surrogate`: a lone UTF-16 surrogate (ClickHouse code 25);
 * `year10000`: a time past what DateTime holds (18.16: code 27; current: code 41).
 */
export function poisonEvent(team: number, kind: "surrogate" | "year10000", i = 0): CapturedEvent {
  const e = capturedEvent(team, i);
  if (kind === "surrogate") e.properties = { ...e.properties, title: "Hi \ud83d" };
  else e.timestamp = new Date(Date.UTC(10000, 0, 1)).toISOString();
  return e;
}
