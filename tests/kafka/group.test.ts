/**
 * Group membership with our Consumer, as the consumer app uses it: each member's poll loop runs concurrently in
 * this process (async loops, small sleeps when idle), commits what it processed every few hundred ms and, in its
 * onRebalance revoke handler, commits everything it processed before the partitions go away.
 *
 *  1. two members split 12 partitions (6 + 6), disjoint;
 *  2. a third joins: a rebalance happens (revokes seen) and the three hold 4 + 4 + 4;
 *  3. close() of one hands its partitions to the other two (6 + 6);
 * while a producer keeps writing. At the end every produced offset was processed, and any offset processed twice
 * had not been committed yet when it was read again (with revoke-time commits there should be none at all).
 */
import { afterAll, expect, test } from "bun:test";
import { Consumer } from "../../lib/kafka/consumer.ts";
import { Producer } from "../../lib/kafka/producer.ts";
import type { KafkaError } from "../../lib/kafka/librdkafka.ts";
import type { RebalanceEvent, TopicPartition } from "../../lib/kafka/types.ts";
import { BOOTSTRAP, deleteTopics, uniqueTopic, waitFor } from "./support.ts";

const topic = uniqueTopic("group");
const group = `${topic}-g`;
const PARTITIONS = 12;

/** Shared view of what the group did, updated by every member (all on this thread, so always consistent). */
const seen = new Map<string, number>(); // "p:o" -> times processed
const committed = new Array<number>(PARTITIONS).fill(0); // highest offset the coordinator confirmed, per partition
const badDuplicates: string[] = [];
let duplicates = 0;
const errors: string[] = [];

class Member {
  readonly consumer: Consumer;
  /** Next offset to commit per partition: last processed + 1. */
  private readonly processed = new Map<number, number>();
  private readonly committedByMe = new Map<number, number>();
  private running = false;
  private loop: Promise<void> | undefined;
  private lastCommit = 0;
  readonly rebalances: RebalanceEvent["kind"][] = [];
  readonly revokeCommitFailures: string[] = [];
  count = 0;

  constructor(readonly name: string) {
    this.consumer = new Consumer(
      {
        "bootstrap.servers": BOOTSTRAP,
        "group.id": group,
        "client.id": name,
        // Members notice a rebalance at the next heartbeat: keep that short so the test is quick.
        "heartbeat.interval.ms": 500,
        "session.timeout.ms": 6000,
      },
      {
        onRebalance: (ev) => this.onRebalance(ev),
        onError: (err: KafkaError) => errors.push(`${name}: ${err.message}`),
      },
    );
    this.consumer.subscribe([topic]);
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  partitions(): number[] {
    return this.consumer.assignment().map((p) => p.partition).sort((a, b) => a - b);
  }

  private async run(): Promise<void> {
    while (this.running) {
      const msgs = await this.consumer.poll(2000);
      for (const m of msgs) {
        const o = Number(m.offset);
        const id = `${m.partition}:${o}`;
        const times = (seen.get(id) ?? 0) + 1;
        seen.set(id, times);
        if (times > 1) {
          duplicates++;
          // Legitimate only if the group had not committed past this offset when it was read again.
          if (o < committed[m.partition]!) badDuplicates.push(`${this.name} re-read ${id}, committed ${committed[m.partition]}`);
        }
        this.processed.set(m.partition, o + 1);
        this.count++;
      }
      if (performance.now() - this.lastCommit > 300) {
        this.lastCommit = performance.now();
        // Periodic commits may fail while a rebalance is in progress: the revoke-time commit covers them.
        await this.commit(this.consumer.assignment()).catch(() => {});
      }
      if (msgs.length === 0) await Bun.sleep(5);
    }
  }

  private async commit(partitions: TopicPartition[]): Promise<void> {
    const offsets = partitions
      .filter((p) => (this.processed.get(p.partition) ?? 0) > (this.committedByMe.get(p.partition) ?? 0))
      .map((p) => ({ topic, partition: p.partition, offset: BigInt(this.processed.get(p.partition)!) }));
    if (offsets.length === 0) return;
    await this.consumer.commit(offsets);
    for (const o of offsets) {
      const n = Number(o.offset);
      this.committedByMe.set(o.partition, n);
      committed[o.partition] = Math.max(committed[o.partition]!, n);
    }
  }

  private async onRebalance(ev: RebalanceEvent): Promise<void> {
    this.rebalances.push(ev.kind);
    if (ev.kind === "revoke") {
      try {
        await this.commit(ev.partitions);
      } catch (err) {
        this.revokeCommitFailures.push(err instanceof Error ? err.message : String(err));
      }
      for (const p of ev.partitions) {
        this.processed.delete(p.partition);
        this.committedByMe.delete(p.partition);
      }
    }
  }
}

/** True when the members hold all 12 partitions between them, disjointly, `each` apiece. */
function split(members: Member[], each: number): boolean {
  const all = members.flatMap((m) => m.partitions());
  return all.length === PARTITIONS && new Set(all).size === PARTITIONS && members.every((m) => m.partitions().length === each);
}

afterAll(async () => {
  await deleteTopics([topic]);
}, 30_000);

test("two members split 12 partitions, a third joins, one leaves: no loss, no unexplained duplicates", async () => {
  // Producer: a first load, then a steady trickle for the whole test so every rebalance happens mid-stream.
  const producer = new Producer({ "bootstrap.servers": BOOTSTRAP, "linger.ms": 2 });
  const producedPerPartition = new Array<number>(PARTITIONS).fill(0);
  const note = (rs: { partition: number; offset: bigint }[]) => {
    for (const r of rs) producedPerPartition[r.partition] = Math.max(producedPerPartition[r.partition]!, Number(r.offset) + 1);
  };
  let n = 0;
  const batch = (size: number) => Array.from({ length: size }, () => ({ key: `user-${n % 5000}`, value: `event-${n++}` }));
  note(await producer.produceMany(topic, batch(20_000)));
  let producing = true;
  const pending: Promise<void>[] = [];
  const trickle = (async () => {
    while (producing) {
      pending.push(producer.produceMany(topic, batch(200)).then(note));
      await Bun.sleep(20);
    }
    await Promise.all(pending);
  })();

  const a = new Member("a");
  const b = new Member("b");
  const members = [a, b];
  let c: Member | undefined;
  try {
    a.start();
    b.start();
    await waitFor("a and b to split 12 partitions 6 + 6", () => split([a, b], 6), 30_000);
    await waitFor("a and b to consume", () => a.count > 0 && b.count > 0, 10_000);
    const revokesBefore = a.rebalances.filter((k) => k === "revoke").length + b.rebalances.filter((k) => k === "revoke").length;

    c = new Member("c");
    members.push(c);
    c.start();
    await waitFor("a, b and c to hold 4 + 4 + 4", () => split([a, b, c!], 4), 30_000);
    const revokesAfter = a.rebalances.filter((k) => k === "revoke").length + b.rebalances.filter((k) => k === "revoke").length;
    expect(revokesAfter).toBeGreaterThan(revokesBefore);
    await waitFor("c to consume", () => c!.count > 0, 10_000);

    // a leaves: its loop stops, close() revokes (its handler commits) and leaves the group.
    await a.stop();
    await a.consumer.close();
    members.splice(members.indexOf(a), 1);
    expect(a.rebalances.at(-1)).toBe("revoke");
    await waitFor("b and c to take over a's partitions (6 + 6)", () => split([b, c!], 6), 30_000);

    producing = false;
    await trickle;
    expect(producer.inFlight()).toBe(0);
    const total = producedPerPartition.reduce((x, y) => x + y, 0);
    await waitFor(
      `b and c to process all ${total} messages`,
      () => producedPerPartition.every((high, p) => [...Array(high).keys()].every((o) => seen.has(`${p}:${o}`))),
      60_000,
      200,
    );
    // Nothing beyond what was produced.
    for (const id of seen.keys()) {
      const [p, o] = id.split(":").map(Number) as [number, number];
      expect(o).toBeLessThan(producedPerPartition[p]!);
    }
    expect(seen.size).toBe(total);

    console.log(
      `group: ${total} messages, processed a=${a.count} b=${b.count} c=${c.count}, duplicates ${duplicates}, ` +
        `rebalances a=${a.rebalances.join(",")} b=${b.rebalances.join(",")} c=${c.rebalances.join(",")}`,
    );
    expect(badDuplicates).toEqual([]);
    const revokeFailures = members.concat(a).flatMap((m) => m.revokeCommitFailures);
    // Every revoke handler committed what its member had processed, so nothing was read twice.
    if (revokeFailures.length === 0) expect(duplicates).toBe(0);
    else console.warn(`revoke-time commits failed (${revokeFailures.join("; ")}): ${duplicates} duplicates allowed`);
    for (const m of [a, b, c]) expect(m.consumer.counters.taken).toBe(m.consumer.counters.destroyed);
  } finally {
    producing = false;
    await trickle.catch(() => {});
    for (const m of members) {
      await m.stop();
      await m.consumer.close();
    }
    for (const m of [a, b, c]) if (m) expect(m.consumer.counters.taken).toBe(m.consumer.counters.destroyed);
    await producer.close();
  }
  expect(errors.filter((e) => !/REBALANCE_IN_PROGRESS|ILLEGAL_GENERATION/.test(e))).toEqual([]);
}, 150_000);
