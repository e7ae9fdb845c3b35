/**
 * End-to-end visibility latency: broker acknowledgement (what a capture 202 waits for, DESIGN.md decision 4)
 * -> row visible to a ClickHouse query, with the default-config consumer running.
 *
 * A paced producer sends realistic events at a fixed rate (each carries its send time in the `bench_sent_ms`
 * property) and keeps every message's partition, offset and acknowledgement time. Meanwhile ClickHouse is asked
 * every 100 ms for max(kafka_offset) per partition of this team's rows. The consumer inserts each partition in
 * offset order and commits only after an insert, so once offset o of partition p is visible, every earlier
 * offset of p is too: a message's visibility time is the first poll whose answer covers its offset (the poll's
 * answer time, so the figure errs high by at most one poll interval plus the query time).
 */
import { Producer } from "../../lib/kafka/producer.ts";
import { KAFKA } from "../../tests/support/stack.ts";
import { chExec } from "./clickhouse.ts";
import { createRng as rng } from "../../lib/events/generator.ts";
import { realisticEvent } from "./events.ts";
import { quantile } from "./stats.ts";
import { encodeCapturedEvent } from "../../lib/events/captured-event.ts";

export interface VisibilityFigures {
  rate: number;
  duration_s: number;
  produced: number;
  achieved_rate: number;
  visible: number;
  /** Milliseconds from broker ack to visible. */
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Milliseconds from the produce call (before the ack) to visible. */
  p50_from_send_ms: number;
  p99_from_send_ms: number;
  ack_p99_ms: number;
  poll_interval_ms: number;
  poll_query_p50_ms: number;
  rows_checked_in_clickhouse: number;
  samples: number[];
}

interface Sent {
  partition: number;
  offset: number;
  sentAt: number;
  ackAt: number;
}

export async function measureVisibility(opts: {
  url: string;
  table: string;
  topic: string;
  team: number;
  rate: number;
  durationS: number;
  /** How long to wait for the last rows after producing stops. */
  drainS?: number;
  log: (s: string) => void;
}): Promise<VisibilityFigures> {
  const { url, table, topic, team, rate, durationS, log } = opts;
  const pollMs = 100;
  const producer = new Producer({ "bootstrap.servers": KAFKA });
  const r = rng(rate);
  const sent: Sent[] = [];
  const pending: Promise<void>[] = [];
  const polls: { t: number; max: Map<number, number> }[] = [];
  const queryMs: number[] = [];
  let producing = true;
  // Time origin shared by producer and poller (same process, same clock).
  const origin = performance.now();
  const now = () => performance.now() - origin;

  // Everything acknowledged so far that the latest poll covers.
  const covered = () => {
    const last = polls[polls.length - 1];
    if (!last) return 0;
    let n = 0;
    for (const s of sent) if (s.ackAt > 0 && (last.max.get(s.partition) ?? -1) >= s.offset) n++;
    return n;
  };

  const poller = (async () => {
    let drainUntil = Number.POSITIVE_INFINITY;
    for (;;) {
      const q0 = now();
      const rows = await chExec(url, `SELECT kafka_partition, max(kafka_offset) FROM ${table} WHERE team_id = ${team} GROUP BY kafka_partition`);
      const t = now();
      queryMs.push(t - q0);
      polls.push({ t, max: new Map(rows.map(([p, o]) => [Number(p), Number(o)])) });
      if (!producing) {
        if (drainUntil === Number.POSITIVE_INFINITY) drainUntil = t + (opts.drainS ?? 30) * 1000;
        if (covered() >= sent.length || t > drainUntil) return;
      }
      const wait = pollMs - (now() - q0);
      if (wait > 0) await Bun.sleep(wait);
    }
  })();

  // Paced producer: every 5 ms, send what the schedule says is due (catches up after a stall: open model).
  const total = rate * durationS;
  let produced = 0;
  const start = now();
  while (produced < total) {
    const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate));
    if (due > produced) {
      const msgs = [];
      const sentAt = now();
      const at = new Date();
      for (let i = produced; i < due; i++) {
        const e = realisticEvent(team, r, at, { bench_sent_ms: Date.now() });
        e.uuid = crypto.randomUUID();
        msgs.push({ key: e.distinct_id, value: encodeCapturedEvent(e) });
      }
      const base = sent.length;
      for (let i = 0; i < msgs.length; i++) sent.push({ partition: -1, offset: -1, sentAt, ackAt: 0 });
      pending.push(
        producer.produceMany(topic, msgs).then((reports) => {
          const ackAt = now();
          reports.forEach((rep, i) => {
            const s = sent[base + i]!;
            s.partition = rep.partition;
            s.offset = Number(rep.offset);
            s.ackAt = ackAt;
          });
        }),
      );
      produced = due;
    }
    await Bun.sleep(5);
  }
  const producedIn = (now() - start) / 1000;
  await Promise.all(pending);
  await producer.close();
  producing = false;
  await poller;

  // Visibility per message: first poll (in time order) whose max offset for its partition covers it.
  const byPartition = new Map<number, Sent[]>();
  for (const s of sent) {
    let list = byPartition.get(s.partition);
    if (!list) byPartition.set(s.partition, (list = []));
    list.push(s);
  }
  const fromAck: number[] = [];
  const fromSend: number[] = [];
  for (const [p, list] of byPartition) {
    list.sort((a, b) => a.offset - b.offset);
    let k = 0;
    for (const poll of polls) {
      const max = poll.max.get(p) ?? -1;
      while (k < list.length && list[k]!.offset <= max) {
        fromAck.push(poll.t - list[k]!.ackAt);
        fromSend.push(poll.t - list[k]!.sentAt);
        k++;
      }
    }
  }
  const [[inCh]] = (await chExec(url, `SELECT uniqExact(uuid) FROM ${table} WHERE team_id = ${team}`)) as [[string]];
  const invisible = sent.length - fromAck.length;
  if (invisible > 0) log(`  visibility ${rate}/s: ${invisible} events not visible within the drain time`);
  const q = (xs: number[], p: number) => Math.round(quantile(xs, p));
  const acks = sent.map((s) => s.ackAt - s.sentAt);
  return {
    rate,
    duration_s: durationS,
    produced: sent.length,
    achieved_rate: Math.round(sent.length / producedIn),
    visible: fromAck.length,
    p50_ms: q(fromAck, 0.5),
    p90_ms: q(fromAck, 0.9),
    p99_ms: q(fromAck, 0.99),
    max_ms: Math.round(Math.max(...fromAck)),
    p50_from_send_ms: q(fromSend, 0.5),
    p99_from_send_ms: q(fromSend, 0.99),
    ack_p99_ms: q(acks, 0.99),
    poll_interval_ms: pollMs,
    poll_query_p50_ms: q(queryMs, 0.5),
    rows_checked_in_clickhouse: Number(inCh),
    samples: fromAck.map((x) => Math.round(x)),
  };
}

