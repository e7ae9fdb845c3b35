/**
 * The short chaos schedule (about 3 minutes plus a private stack's start): load through capture while the
 * consumer is killed twice, ClickHouse, Kafka, Redis and PostgreSQL go down and come back, and capture restarts;
 * poison events go straight onto the topic. Runs on its own private stack (bench/chaos/private-stack.ts), never
 * the shared one. `make chaos` runs the full schedule and records its figures.
 */
import { expect, test } from "bun:test";
import { faultTable, runChaos, SHORT } from "../../bench/chaos/chaos.ts";

test("chaos (short): nothing acknowledged is lost, the trend total is exact, the DLQ holds exactly the poison", async () => {
  const f = await runChaos({ ...SHORT, log: (l) => console.log(l) });
  console.log(`\n${faultTable(f)}\n`);
  expect(f.faults.length).toBe(6);
  expect(f.acknowledged).toBeGreaterThan(1000);
  expect(f.unacknowledged).toBe(0);
  expect(f.missing).toBe(0);
  expect(f.trend_total).toBe(f.acknowledged_stored);
  expect(f.stored_distinct).toBe(f.acknowledged_stored);
  expect(f.poison_sent).toBeGreaterThan(5);
  expect({ dlq: f.dlq_messages, distinct: f.dlq_distinct_poison, unexpected: f.dlq_unexpected }).toEqual({ dlq: f.poison_sent, distinct: f.poison_sent, unexpected: 0 });
  // Every fault was recovered from (a canary through capture became queryable).
  for (const x of f.faults) expect(x.recovery_s).toBeGreaterThanOrEqual(0);
  expect(f.ok).toBe(true);
}, 900_000);
