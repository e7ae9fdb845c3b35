/**
 * The consumer's loop: poll Kafka, decode, batch, insert into ClickHouse, then commit — in that order, so an
 * offset is committed only once ClickHouse stored (or the DLQ took) every message before it (at-least-once; the
 * uuid makes a redelivered row invisible to queries: exactly-once results).
 *
 * Write-buffer discipline: send a batch when it is full (rows or bytes) or its first row has lingered long
 * enough; flush before partitions are revoked; flush on stop. One batch is in flight while the next one is
 * decoded (the insert waits on ClickHouse, decoding on this thread: overlapping them measured ~2x), and a batch
 * is sent only after the previous one was committed, so commits stay in offset order and at most two batches
 * are in memory. The loop keeps polling while a batch is in flight (one message at a time once the next batch is
 * full), so rebalances are served even while ClickHouse is down.
 *
 * Failures are told apart (insert-errors.ts): while ClickHouse or the way to it fails, retry with capped
 * exponential backoff and pause the assigned partitions so librdkafka stops fetching (memory stays bounded).
 * When ClickHouse rejects the rows themselves, split the batch until the offending rows are isolated
 * (isolate.ts), dead-letter those with reason `insert_rejected` and ClickHouse's message, store the rest, commit.
 */
import { decodeCapturedEvent } from "../../lib/events/captured-event.ts";
import { addRewind, PositionLostError, type Consumer } from "../../lib/kafka/consumer.ts";
import type { ConsumedMessage, RebalanceEvent, TopicPartitionOffset } from "../../lib/kafka/types.ts";
import type { Logger } from "../../lib/log/logger.ts";
import { LogRateLimit } from "../../lib/log/rate-limit.ts";
import { Batch, type BatchLimits } from "./batch.ts";
import type { RowSink } from "./clickhouse-sink.ts";
import type { DeadLetters } from "./dead-letters.ts";
import { classifyInsertError, type InsertFailure } from "./insert-errors.ts";
import { isolateRejected } from "./isolate.ts";
import type { ConsumerMetrics } from "./metrics.ts";
import { clickhouseDateTime } from "../../lib/events/event-row.ts";
import { toRow } from "./rows.ts";
import type { Persons } from "./persons/persons.ts";

export interface IngestOptions {
  limits: BatchLimits;
  retryMaxBackoffMs: number;
  revokeFlushTimeoutMs: number;
  /**
   * How long an insert failure with a ClickHouse error code in neither list of insert-errors.ts is retried as
   * transient before the batch is split (and rows still failing alone are dead-lettered).
   */
  unknownErrorRetryMs?: number;
  /** Messages taken from librdkafka per poll. */
  pollMax?: number;
  /**
   * Consuming cannot go on without skipping messages (a fetch position could not be moved back). The loop has
   * stopped polling; the caller should stop() (which commits only what was processed) and exit non-zero.
   */
  onFatal?: (err: unknown) => void;
  /** Person processing (persons/persons.ts); without it events never touch person state. */
  persons?: Pick<Persons, "collect" | "apply">;
}

type KafkaConsumer = Pick<Consumer, "poll" | "commit" | "pause" | "resume" | "seek" | "assignment" | "close">;

interface DeadLetter {
  message: ConsumedMessage;
  reason: string;
  detail: string;
}

class FlushTimeout extends Error {}

/** Tries of one message whose handling throws before it goes to the DLQ. */
const QUARANTINE_AFTER = 3;
/** Longest wait for a commit's confirmation; an unconfirmed commit only means rows may be read again. */
const COMMIT_WAIT_MS = 30_000;
/** Dead letters remembered as delivered, so a batch read again (after a revoke) does not send them twice. */
const REMEMBER_DEAD_LETTERS = 100_000;

const letterKey = (m: ConsumedMessage) => `${m.topic}\u0000${m.partition}\u0000${m.offset}`;

export class Ingest {
  private batch = new Batch();
  private dead: DeadLetter[] = [];
  private running = false;
  private loop: Promise<void> | null = null;
  private paused = false;
  /** The batch being inserted and committed, if any. */
  private inflight: Promise<void> | null = null;
  /** When retries give up (performance.now()); finite only while flushing for a revoke or a stop. */
  private deadline = Number.POSITIVE_INFINITY;
  consumer!: KafkaConsumer;
  /** The message whose handling last threw, and how many times in a row. */
  private failing: { key: string; count: number } | undefined;
  /** Dead letters the DLQ confirmed (insertion-ordered: the oldest are forgotten first). */
  private readonly delivered = new Set<string>();
  private readonly logLimit = new LogRateLimit(10_000);

  constructor(
    private readonly sink: RowSink,
    private readonly deadLetters: DeadLetters,
    private readonly metrics: ConsumerMetrics,
    private readonly log: Logger,
    private readonly opts: IngestOptions,
  ) {}

  /** Give this to the Consumer: the pending batch is flushed and committed before partitions go away. */
  readonly onRebalance = async (ev: RebalanceEvent): Promise<void> => {
    this.log.info({ kind: ev.kind, partitions: ev.partitions.length }, "rebalance");
    if (ev.kind === "assign") {
      // A new assignment starts unpaused (lib/kafka resumes what it assigns: librdkafka would keep a partition's
      // pause across re-assignment); the next failing insert pauses it again.
      if (this.paused) {
        this.paused = false;
        this.metrics.paused.set(0);
      }
      return;
    }
    try {
      await this.flush(performance.now() + this.opts.revokeFlushTimeoutMs);
    } catch (err) {
      // Not confirmed in time: drop what is uncommitted; the partitions' next owner reads it again. Every
      // partition goes on a revoke (eager protocol, enforced by config.ts), so nothing stays assigned here
      // with a gap behind it.
      this.log.warn({ err: String(err), rows: this.batch.size }, "revoke: batch not flushed, left for redelivery");
      this.batch = new Batch();
      this.dead = [];
    }
  };

  start(consumer: KafkaConsumer): void {
    this.consumer = consumer;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops polling, flushes and commits what was read, leaves the group. */
  async stop(timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    // The loop may be waiting on a batch that retries while ClickHouse is down: bound that wait too.
    this.deadline = deadline;
    this.running = false;
    await this.loop;
    try {
      await this.flush(deadline);
    } catch (err) {
      this.log.error({ err: String(err) }, "stop: final batch not flushed; it will be redelivered");
    }
    // Whatever is left was not stored: the revoke that close() triggers must not commit past it.
    this.batch = new Batch();
    this.dead = [];
    await this.consumer.close();
  }

  private async run(): Promise<void> {
    const { limits } = this.opts;
    const pollMax = this.opts.pollMax ?? 10_000;
    while (this.running) {
      // The next batch is full while one is still in flight: take one message at a time (polling still serves
      // rebalances), so memory stays at two batches.
      const held = this.inflight !== null && this.batch.full(limits);
      let messages: ConsumedMessage[] = [];
      let next = 0;
      try {
        messages = await this.consumer.poll(held ? 1 : pollMax);
        const insertedAt = clickhouseDateTime(Date.now());
        for (; next < messages.length; next++) this.acceptOrQuarantine(messages[next]!, insertedAt);
      } catch (err) {
        // Unexpected. Polled messages not yet accepted must be read again, or a later commit would move past
        // them: seek their partitions back, keep the process alive (no crash loop) and try again shortly.
        // (lib/kafka seeks back by itself when it cannot hand a batch out.)
        const rewind = rewindPositions(messages.slice(next));
        try {
          if (err instanceof PositionLostError) throw err;
          this.consumer.seek(rewind);
        } catch (fatal) {
          this.log.fatal({ err: String(fatal), cause: String(err) }, "ingest stopped: consuming on would skip messages");
          this.running = false;
          this.opts.onFatal?.(fatal);
          return;
        }
        this.log.error(
          { err: String(err), rewound: messages.length - next, from: rewind.map((p) => `${p.topic}[${p.partition}]@${p.offset}`) },
          "ingest loop error",
        );
        await Bun.sleep(500);
      }
      // Whatever was accepted still goes out on time, also while some message keeps failing.
      if (this.inflight === null && this.batch.due(limits)) this.dispatch();
      else if (held) await Promise.race([this.inflight?.catch(() => {}), Bun.sleep(50)]);
      else if (messages.length === 0) await Bun.sleep(Math.min(10, limits.lingerMs));
    }
  }

  /**
   * accept(), except that a message whose handling throws QUARANTINE_AFTER times in a row goes to the DLQ
   * (reason `ingest_error`) instead of stalling its partition and everything read after it.
   */
  private acceptOrQuarantine(m: ConsumedMessage, insertedAt: string): void {
    try {
      this.accept(m, insertedAt);
    } catch (err) {
      const key = `${m.partition}\u0000${m.offset}\u0000${m.topic}`;
      const count = this.failing?.key === key ? this.failing.count + 1 : 1;
      if (count < QUARANTINE_AFTER) {
        this.failing = { key, count };
        throw err;
      }
      this.failing = undefined;
      this.log.error({ err: String(err), partition: m.partition, offset: String(m.offset) }, "message failed repeatedly: sent to the DLQ");
      this.reject(m, "ingest_error", String(err), 0);
    }
  }

  private accept(m: ConsumedMessage, insertedAt: string): void {
    const bytes = m.value?.length ?? 0;
    const decoded = m.value ? decodeCapturedEvent(m.value) : ({ ok: false, reason: "undecodable", detail: "empty value" } as const);
    if (decoded.ok) {
      try {
        // Everything that can throw runs before the batch takes the row: a message is stored or rejected, never both.
        const row = toRow(decoded.event, m.partition, m.offset, insertedAt);
        const person = this.opts.persons?.collect(decoded.event);
        this.batch.add(m, row, bytes);
        if (person) this.batch.personUpdates.push(person);
        return;
      } catch (err) {
        this.reject(m, "schema_violation", String(err), bytes);
        return;
      }
    }
    this.reject(m, decoded.reason, decoded.detail, bytes);
  }

  private reject(m: ConsumedMessage, reason: string, detail: string, bytes: number): void {
    this.dead.push({ message: m, reason, detail });
    this.batch.add(m, null, bytes);
  }

  /** Starts writing the pending batch (the caller made sure none is in flight); does not wait for it. */
  private dispatch(): void {
    if (this.batch.empty) return;
    const batch = this.batch;
    const dead = this.dead;
    this.batch = new Batch();
    this.dead = [];
    const write = this.write(batch, dead);
    this.inflight = write;
    const clear = () => {
      if (this.inflight === write) this.inflight = null;
    };
    // A failure can only be a FlushTimeout during flush() or stop(), which await this promise and handle it.
    write.then(clear, clear);
  }

  /**
   * Waits for the batch in flight, then writes the pending one; gives up (throws) at `deadline`
   * (performance.now()), leaving whatever is not committed to be read again.
   */
  async flush(deadline: number): Promise<void> {
    this.deadline = deadline;
    try {
      await this.settleInflight();
      this.dispatch();
      await this.settleInflight();
    } finally {
      this.deadline = Number.POSITIVE_INFINITY;
    }
  }

  /**
   * Waits for the batch in flight. If it was given up (a deadline passed), everything read after it is dropped
   * too: committing a later batch would move the group's offset past rows that were never stored.
   */
  private async settleInflight(): Promise<void> {
    if (!this.inflight) return;
    try {
      await this.inflight;
    } catch (err) {
      this.batch = new Batch();
      this.dead = [];
      throw err;
    }
  }

  /** Insert (isolating rejected rows), dead-letter, commit; each step retried until it succeeds or the deadline passes. */
  private async write(batch: Batch, dead: DeadLetter[]): Promise<void> {
    const letters = [...dead];
    const persons = this.opts.persons;
    if (persons && batch.personUpdates.length > 0) await this.retry("persons", () => persons.apply(batch.personUpdates));
    if (batch.size > 0) {
      const unknown = { since: Number.NaN };
      const rejected = await isolateRejected(batch.size, (lo, hi) => this.insertRange(batch, lo, hi, unknown));
      for (const r of rejected) letters.push({ message: batch.sources[r.index]!, reason: "insert_rejected", detail: r.failure.message });
      const allowed = rejected.length > 0 ? this.logLimit.allow("rejected") : null;
      if (allowed) {
        this.log.warn(
          { rejected: rejected.length, rows: batch.size, code: rejected[0]!.failure.code, first: rejected[0]!.failure.message.slice(0, 300), suppressedLines: allowed.suppressed },
          "ClickHouse rejected rows: isolated, sent to the DLQ",
        );
      }
      this.metrics.batchRows.observe(batch.size);
      this.metrics.batchBytes.observe(batch.bytes);
      this.metrics.eventsInserted.inc(batch.size - rejected.length);
    }
    if (letters.length > 0) await this.sendDeadLetters(letters);
    try {
      await this.confirmed(this.consumer.commit(batch.offsets()));
      this.metrics.commits.inc();
    } catch (err) {
      // The rows are stored; a failed commit only means they may be read again (and deduplicated by uuid).
      this.log.warn({ err: String(err) }, "offset commit failed");
    }
  }

  /**
   * Waits for a commit's confirmation, but not past the flush deadline (a revoke must not wait on a commit that
   * the coordinator holds until the rebalance it is part of completes) nor past COMMIT_WAIT_MS.
   */
  private async confirmed(commit: Promise<void>): Promise<void> {
    let settled = false;
    const done = commit.finally(() => {
      settled = true;
    });
    const giveUp = performance.now() + COMMIT_WAIT_MS;
    while (!settled) {
      if (performance.now() > Math.min(giveUp, this.deadline)) {
        done.catch(() => {});
        throw new Error("commit not confirmed in time");
      }
      await Promise.race([done.catch(() => {}), Bun.sleep(100)]);
    }
    await done;
  }

  /**
   * Inserts rows [lo, hi) of `batch`, retrying transient failures; resolves with null when stored, or with the
   * failure when the rows are at fault (or an unknown error outlasted unknownErrorRetryMs: `unknown.since` is
   * shared by every range of the batch, so the split does not wait that long again for each half).
   */
  private async insertRange(batch: Batch, lo: number, hi: number, unknown: { since: number }): Promise<InsertFailure | null> {
    const rows = lo === 0 && hi === batch.size ? batch.rows : batch.rows.slice(lo, hi);
    if (rows.length < batch.size) this.metrics.splitInserts.inc();
    let failure: InsertFailure | null = null;
    await this.retry("insert", async () => {
      const started = performance.now();
      try {
        await this.sink.insert(rows);
      } catch (err) {
        const f = classifyInsertError(err);
        this.metrics.insertErrors.inc({ kind: f.kind });
        if (f.kind === "rows") return void (failure = f);
        if (f.kind === "unknown") {
          if (Number.isNaN(unknown.since)) unknown.since = performance.now();
          if (performance.now() - unknown.since >= (this.opts.unknownErrorRetryMs ?? 60_000)) return void (failure = f);
        }
        throw err;
      }
      this.metrics.insertSeconds.observe((performance.now() - started) / 1000);
    });
    return failure;
  }

  /** Sends each dead letter once: a retry sends only those the DLQ has not confirmed yet. */
  private async sendDeadLetters(letters: DeadLetter[]): Promise<void> {
    let pending = letters.filter((d) => !this.delivered.has(letterKey(d.message)));
    await this.retry("dead-letter", async () => {
      const results = await Promise.allSettled(pending.map((d) => this.deadLetters.send(d.message, d.reason, d.detail)));
      const failed: DeadLetter[] = [];
      let error: unknown;
      results.forEach((r, i) => {
        const d = pending[i]!;
        if (r.status === "rejected") {
          failed.push(d);
          error ??= r.reason;
          return;
        }
        this.remember(letterKey(d.message));
        this.metrics.dlq.inc({ reason: d.reason });
      });
      pending = failed;
      if (failed.length > 0) throw error;
    });
    const first = letters[0]!;
    const allowed = this.logLimit.allow(`dlq:${first.reason}`);
    if (allowed) this.log.warn({ count: letters.length, reason: first.reason, suppressedLines: allowed.suppressed }, "messages sent to the DLQ");
  }

  private remember(key: string): void {
    this.delivered.add(key);
    if (this.delivered.size > REMEMBER_DEAD_LETTERS) this.delivered.delete(this.delivered.values().next().value!);
  }

  private async retry(step: string, fn: () => Promise<void>): Promise<void> {
    let backoff = 100;
    for (let attempt = 1; ; attempt++) {
      try {
        await fn();
        if (this.paused) this.setPaused(false);
        return;
      } catch (err) {
        if (performance.now() + backoff > this.deadline) throw new FlushTimeout(`${step} failed: ${String(err)}`);
        if (!this.paused) this.setPaused(true);
        const allowed = this.logLimit.allow(`retry:${step}`);
        if (allowed) this.log.warn({ step, attempt, backoffMs: backoff, err: String(err).slice(0, 500), suppressedLines: allowed.suppressed }, "retrying");
        await Bun.sleep(backoff);
        backoff = Math.min(backoff * 2, this.opts.retryMaxBackoffMs);
      }
    }
  }

  private setPaused(paused: boolean): void {
    const parts = this.consumer.assignment();
    try {
      if (paused) this.consumer.pause(parts);
      else this.consumer.resume(parts);
    } catch (err) {
      this.log.warn({ err: String(err) }, paused ? "pause failed" : "resume failed");
    }
    this.paused = paused;
    this.metrics.paused.set(paused ? 1 : 0);
    this.log.info({ partitions: parts.length }, paused ? "paused partitions: ClickHouse (or the DLQ) failing" : "resumed partitions");
  }
}

/** Where each partition's part of `messages` starts. */
export function rewindPositions(messages: readonly ConsumedMessage[]): TopicPartitionOffset[] {
  const at = new Map<string, TopicPartitionOffset>();
  for (const m of messages) addRewind(at, m.topic, m.partition, m.offset);
  return [...at.values()];
}
