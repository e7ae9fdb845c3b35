/**
 * Kafka group consumer on librdkafka through bun:ffi.
 *
 * - poll() takes up to N messages with rd_kafka_consume_batch_queue(timeout 0): one FFI call per batch, never
 *   waiting, so the caller's loop decides when to sleep.
 * - Offsets are never committed behind the caller's back (enable.auto.commit=false): commit() sends exactly the
 *   offsets the caller has finished with and resolves when the coordinator confirmed them.
 * - Rebalances: librdkafka calls our rebalance callback from inside consume_batch_queue (on this thread). We copy
 *   the partition list, yield, and apply the assignment only after the caller's onRebalance handler has run, so
 *   the caller can flush its batch and commit before partitions are revoked.
 * - Every message taken from librdkafka is destroyed exactly once, before poll() returns (counted: see counters).
 */
import { CString, JSCallback, ptr, read, toArrayBuffer } from "bun:ffi";
import {
  buildConf,
  buildPartitionList,
  ERR,
  KafkaError,
  lib,
  MSG,
  newClient,
  RD_KAFKA_CONSUMER,
  RD_KAFKA_EVENT_ERROR,
  RD_KAFKA_EVENT_OFFSET_COMMIT,
  RD_KAFKA_EVENT_STATS,
  readPartitionList,
  takeError,
} from "./librdkafka.ts";
import type { KafkaProps } from "./producer.ts";
import type { ConsumedMessage, MessageHeader, RebalanceEvent, TopicPartition, TopicPartitionOffset } from "./types.ts";

export const CONSUMER_DEFAULTS: KafkaProps = {
  "enable.auto.commit": false,
  "enable.auto.offset.store": false,
  "auto.offset.reset": "earliest",
  "enable.partition.eof": false,
  // Larger fetches: the consumer feeds ClickHouse batches of tens of thousands of rows.
  "fetch.max.bytes": 52_428_800,
  "max.partition.fetch.bytes": 4_194_304,
  "queued.max.messages.kbytes": 262_144,
  // Let the broker gather a fetch instead of answering every poll with the few messages that arrived since the
  // last one. Measured with capture at 4k events/s on the co-located stack: the broker's CPU 42% -> 27% of a core
  // and the consumer's 15% -> 7%; events become visible at most 200 ms later (the consumer's linger is 1 s).
  "fetch.min.bytes": 262_144,
  "fetch.wait.max.ms": 200,
};

export interface ConsumerOptions {
  /** Read message headers (one extra FFI call per message; off by default). */
  headers?: boolean;
  /** Runs before librdkafka applies an assignment change; awaited. */
  onRebalance?: (ev: RebalanceEvent) => Promise<void> | void;
  onError?: (err: KafkaError) => void;
  onStats?: (stats: Record<string, unknown>) => void;
}

interface PendingRebalance {
  code: number;
  list: number;
  partitions: TopicPartition[];
}

export class Consumer {
  readonly rk: number;
  private readonly consumerQueue: number;
  private readonly mainQueue: number;
  private readonly commitQueue: number;
  private readonly rebalanceCb: JSCallback;
  private readonly rebalances: PendingRebalance[] = [];
  private readonly topicNames = new Map<number, string>();
  private readonly commits = new Map<number, { resolve: () => void; reject: (e: KafkaError) => void }>();
  private nextCommit = 1;
  private commitTimer: ReturnType<typeof setTimeout> | undefined;
  private msgArray = new BigUint64Array(1024);
  private readonly outPtr = new BigUint64Array(4);
  private readonly outPtrAddr = ptr(this.outPtr);
  private assigned: TopicPartition[] = [];
  private readonly cooperative: boolean;
  private closed = false;
  /** Messages taken from and handed back to librdkafka; equal whenever poll() is not running. */
  readonly counters = { taken: 0, destroyed: 0 };

  constructor(
    props: KafkaProps,
    private readonly opts: ConsumerOptions = {},
  ) {
    if (!props["group.id"]) throw new Error("Consumer needs a group.id");
    const merged = { ...CONSUMER_DEFAULTS, ...props };
    const conf = buildConf(merged);
    const l = lib();
    this.rebalanceCb = new JSCallback((_rk, code, partitions) => this.onRebalanceCallback(code as number, partitions as number), {
      args: ["ptr", "i32", "ptr", "ptr"],
      returns: "void",
    });
    l.rd_kafka_conf_set_rebalance_cb(conf as never, this.rebalanceCb.ptr as never);
    const statsOn = Number(merged["statistics.interval.ms"] ?? 0) > 0;
    l.rd_kafka_conf_set_events(conf as never, RD_KAFKA_EVENT_ERROR | (statsOn ? RD_KAFKA_EVENT_STATS : 0));
    this.rk = newClient(RD_KAFKA_CONSUMER, conf);
    const proto = String(merged["partition.assignment.strategy"] ?? "");
    this.cooperative = proto.includes("cooperative");
    // Fetched messages and rebalances live on the consumer queue; errors and stats on the main queue, served
    // separately through the event API.
    this.consumerQueue = l.rd_kafka_queue_get_consumer(this.rk as never) as unknown as number;
    this.mainQueue = l.rd_kafka_queue_get_main(this.rk as never) as unknown as number;
    this.commitQueue = l.rd_kafka_queue_new(this.rk as never) as unknown as number;
  }

  subscribe(topics: string[]): void {
    const list = buildPartitionList(topics.map((topic) => ({ topic, partition: -1 })));
    try {
      const code = lib().rd_kafka_subscribe(this.rk as never, list as never);
      if (code !== 0) throw new KafkaError(code, `subscribe(${topics.join(",")})`);
    } finally {
      lib().rd_kafka_topic_partition_list_destroy(list as never);
    }
  }

  /** The partitions currently assigned to this member. */
  assignment(): TopicPartition[] {
    return [...this.assigned];
  }

  /**
   * Applies pending rebalances (after awaiting onRebalance), then returns up to `max` messages already fetched.
   * Never waits for the network: an empty array means nothing is buffered right now.
   */
  async poll(max = 10_000): Promise<ConsumedMessage[]> {
    if (this.closed) return [];
    await this.applyRebalances();
    this.serveMain();
    return this.take(max);
  }

  /** Commits exactly these offsets (next offset to read); resolves when the group coordinator confirmed. */
  commit(offsets: TopicPartitionOffset[]): Promise<void> {
    if (offsets.length === 0) return Promise.resolve();
    const id = this.nextCommit++;
    const list = buildPartitionList(offsets);
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    try {
      const code = lib().rd_kafka_commit_queue(this.rk as never, list as never, this.commitQueue as never, null, id as never);
      if (code !== 0) return Promise.reject(new KafkaError(code, "commit"));
    } finally {
      lib().rd_kafka_topic_partition_list_destroy(list as never);
    }
    this.commits.set(id, { resolve, reject });
    this.scheduleCommitPoll();
    return promise;
  }

  /**
   * Moves the fetch position of assigned partitions (offset = next message to hand out). Synchronous: it waits up
   * to `timeoutMs` for librdkafka's fetcher, which guarantees that no message fetched for the old position is
   * handed out afterwards (rdkafka.h, rd_kafka_seek_partitions). Throws a KafkaError when any partition failed.
   */
  seek(positions: TopicPartitionOffset[], timeoutMs = 5000): void {
    if (positions.length === 0) return;
    const l = lib();
    const list = buildPartitionList(positions);
    try {
      const err = takeError(l.rd_kafka_seek_partitions(this.rk as never, list as never, timeoutMs) as unknown as number);
      if (err) throw err;
      const failed = readPartitionList(list).find((p) => p.err !== 0);
      if (failed) throw new KafkaError(failed.err, `seek ${failed.topic}[${failed.partition}] to ${failed.offset}`);
    } finally {
      l.rd_kafka_topic_partition_list_destroy(list as never);
    }
  }

  pause(partitions: TopicPartition[]): void {
    this.pauseResume(partitions, true);
  }

  resume(partitions: TopicPartition[]): void {
    this.pauseResume(partitions, false);
  }

  /**
   * Leaves the group cleanly: unsubscribes (the revoke goes through onRebalance, so the caller commits), then
   * closes and destroys the handle.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    const l = lib();
    l.rd_kafka_unsubscribe(this.rk as never);
    const until = performance.now() + 10_000;
    // Serve the consumer queue until the revoke has been handled and nothing is assigned.
    while (performance.now() < until) {
      await this.applyRebalances();
      this.take(10_000, true);
      if (this.assigned.length === 0 && this.rebalances.length === 0) break;
      await Bun.sleep(5);
    }
    while (this.commits.size > 0 && performance.now() < until) {
      this.serveCommits();
      await Bun.sleep(5);
    }
    this.closed = true;
    clearTimeout(this.commitTimer);
    // Nothing is assigned any more, so this only sends LeaveGroup: a short, bounded wait.
    l.rd_kafka_consumer_close(this.rk as never);
    this.take(1_000_000, true);
    for (const r of this.rebalances) l.rd_kafka_topic_partition_list_destroy(r.list as never);
    this.rebalances.length = 0;
    l.rd_kafka_queue_destroy(this.commitQueue as never);
    l.rd_kafka_queue_destroy(this.mainQueue as never);
    l.rd_kafka_queue_destroy(this.consumerQueue as never);
    l.rd_kafka_destroy(this.rk as never);
    for (const c of this.commits.values()) c.reject(new KafkaError(ERR._DESTROY, "consumer closed"));
    this.commits.clear();
    this.rebalanceCb.close();
  }

  // ---- internals ----

  /** Called by librdkafka inside consume_batch_queue; must not block, and must not throw. */
  private onRebalanceCallback(code: number, partitions: number): void {
    try {
      const list = lib().rd_kafka_topic_partition_list_copy(partitions as never) as unknown as number;
      const parts = readPartitionList(list).map(({ topic, partition }) => ({ topic, partition }));
      this.rebalances.push({ code, list, partitions: parts });
      // Return from consume_batch_queue now; the assignment is applied by applyRebalances().
      lib().rd_kafka_yield(this.rk as never);
    } catch (err) {
      this.opts.onError?.(new KafkaError(ERR._FATAL, `rebalance callback: ${String(err)}`));
    }
  }

  private async applyRebalances(): Promise<void> {
    const l = lib();
    while (this.rebalances.length > 0) {
      const r = this.rebalances.shift()!;
      try {
        if (r.code === ERR._ASSIGN_PARTITIONS) {
          await this.opts.onRebalance?.({ kind: "assign", partitions: r.partitions });
          if (this.cooperative) this.check(takeError(l.rd_kafka_incremental_assign(this.rk as never, r.list as never) as unknown as number));
          else this.checkCode(l.rd_kafka_assign(this.rk as never, r.list as never), "assign");
          // librdkafka keeps a partition's pause flag across unassign/assign: a partition paused before a
          // rebalance would come back paused and never be fetched. What is assigned starts resumed.
          this.checkCode(l.rd_kafka_resume_partitions(this.rk as never, r.list as never), "resume assigned");
          this.assigned = this.cooperative ? [...this.assigned, ...r.partitions] : r.partitions;
        } else {
          await this.opts.onRebalance?.({ kind: "revoke", partitions: r.partitions });
          if (this.cooperative) this.check(takeError(l.rd_kafka_incremental_unassign(this.rk as never, r.list as never) as unknown as number));
          else this.checkCode(l.rd_kafka_assign(this.rk as never, null), "unassign");
          const gone = new Set(r.partitions.map((p) => `${p.topic}:${p.partition}`));
          this.assigned = this.cooperative ? this.assigned.filter((p) => !gone.has(`${p.topic}:${p.partition}`)) : [];
        }
      } finally {
        l.rd_kafka_topic_partition_list_destroy(r.list as never);
      }
    }
  }

  private check(err: KafkaError | null): void {
    if (err) this.opts.onError?.(err);
  }

  private checkCode(code: number, what: string): void {
    if (code !== 0) this.opts.onError?.(new KafkaError(code, what));
  }

  /** Takes up to `max` messages from the consumer queue; with `discard`, destroys them without decoding. */
  private take(max: number, discard = false): ConsumedMessage[] {
    const l = lib();
    if (this.msgArray.length < max) this.msgArray = new BigUint64Array(max);
    const n = l.rd_kafka_consume_batch_queue(this.consumerQueue as never, 0, this.msgArray, max) as number;
    if (n <= 0) return [];
    this.counters.taken += n;
    const out: ConsumedMessage[] = [];
    let failure: unknown;
    // After a failure nothing of this batch is handed out; where each partition's part of it starts, so that
    // the fetch position goes back there and no message is skipped.
    let rewind: Map<string, TopicPartitionOffset> | undefined;
    for (let i = 0; i < n; i++) {
      const m = Number(this.msgArray[i]);
      try {
        if (failure !== undefined) {
          // The rest of the batch is only handed back to librdkafka (never leaked).
          if (rewind && read.i32(m as never, MSG.err) === 0) addRewind(rewind, this.topicName(m), read.i32(m as never, MSG.partition), read.i64(m as never, MSG.offset));
          continue;
        }
        if (discard) continue;
        const err = read.i32(m as never, MSG.err);
        if (err !== 0) {
          if (err !== ERR._PARTITION_EOF) {
            const len = Number(read.u64(m as never, MSG.len));
            const text = len > 0 ? new CString(read.ptr(m as never, MSG.payload) as never, 0, len).toString() : "";
            this.opts.onError?.(new KafkaError(err, text));
          }
          continue;
        }
        out.push(this.decode(m));
      } catch (err) {
        if (failure === undefined) {
          failure = err;
          try {
            rewind = new Map();
            for (const d of out) addRewind(rewind, d.topic, d.partition, d.offset);
            if (read.i32(m as never, MSG.err) === 0) addRewind(rewind, this.topicName(m), read.i32(m as never, MSG.partition), read.i64(m as never, MSG.offset));
          } catch {
            rewind = undefined;
          }
        } else {
          // Reading where a message sits failed too: where to go back to is unknown from here on.
          rewind = undefined;
        }
      } finally {
        l.rd_kafka_message_destroy(m as never);
        this.counters.destroyed++;
      }
    }
    if (failure !== undefined) {
      try {
        if (!rewind) throw new Error("the failed batch's positions could not be read");
        this.seek([...rewind.values()]);
      } catch (seekErr) {
        throw new PositionLostError("a consumed batch could not be handed out, and seeking back to it failed", { cause: seekErr });
      }
      throw failure;
    }
    return out;
  }

  private topicName(m: number): string {
    const rkt = read.ptr(m as never, MSG.rkt);
    let topic = this.topicNames.get(rkt);
    if (topic === undefined) {
      topic = String(lib().rd_kafka_topic_name(rkt as never));
      this.topicNames.set(rkt, topic);
    }
    return topic;
  }

  private decode(m: number): ConsumedMessage {
    const msg: ConsumedMessage = {
      topic: this.topicName(m),
      partition: read.i32(m as never, MSG.partition),
      offset: read.i64(m as never, MSG.offset),
      key: copyBytes(read.ptr(m as never, MSG.key), Number(read.u64(m as never, MSG.key_len))),
      value: copyBytes(read.ptr(m as never, MSG.payload), Number(read.u64(m as never, MSG.len))),
      timestamp: lib().rd_kafka_message_timestamp(m as never, null) as number,
    };
    if (this.opts.headers) msg.headers = this.readHeaders(m);
    return msg;
  }

  private readHeaders(m: number): MessageHeader[] {
    const l = lib();
    const out: MessageHeader[] = [];
    if (l.rd_kafka_message_headers(m as never, this.outPtrAddr as never) !== 0) return out;
    const hdrs = Number(this.outPtr[0]);
    const base = this.outPtrAddr;
    // out slots: [1] name, [2] value, [3] size
    for (let idx = 0; ; idx++) {
      if (l.rd_kafka_header_get_all(hdrs as never, idx, (base + 8) as never, (base + 16) as never, (base + 24) as never) !== 0) break;
      const namePtr = Number(this.outPtr[1]);
      const valPtr = Number(this.outPtr[2]);
      const size = Number(this.outPtr[3]);
      out.push({ key: new CString(namePtr as never).toString(), value: valPtr ? copyBytes(valPtr, size) : null });
    }
    return out;
  }

  private pauseResume(partitions: TopicPartition[], pause: boolean): void {
    if (partitions.length === 0) return;
    const l = lib();
    const list = buildPartitionList(partitions);
    try {
      const code = pause ? l.rd_kafka_pause_partitions(this.rk as never, list as never) : l.rd_kafka_resume_partitions(this.rk as never, list as never);
      if (code !== 0) throw new KafkaError(code, pause ? "pause" : "resume");
    } finally {
      l.rd_kafka_topic_partition_list_destroy(list as never);
    }
  }

  /** Errors and statistics (event API, timeout 0). */
  private serveMain(): void {
    const l = lib();
    for (let i = 0; i < 1000; i++) {
      const ev = l.rd_kafka_queue_poll(this.mainQueue as never, 0) as unknown as number;
      if (!ev) return;
      try {
        const type = l.rd_kafka_event_type(ev as never);
        if (type === RD_KAFKA_EVENT_ERROR) {
          this.opts.onError?.(new KafkaError(l.rd_kafka_event_error(ev as never), String(l.rd_kafka_event_error_string(ev as never))));
        } else if (type === RD_KAFKA_EVENT_STATS && this.opts.onStats) {
          try {
            this.opts.onStats(JSON.parse(String(l.rd_kafka_event_stats(ev as never))));
          } catch {
            // Ignore a malformed statistics document.
          }
        }
      } finally {
        l.rd_kafka_event_destroy(ev as never);
      }
    }
  }

  private scheduleCommitPoll(): void {
    if (this.commitTimer !== undefined || this.commits.size === 0 || this.closed) return;
    this.commitTimer = setTimeout(() => {
      this.commitTimer = undefined;
      this.serveCommits();
      this.scheduleCommitPoll();
    }, 2);
  }

  private serveCommits(): void {
    const l = lib();
    for (;;) {
      const ev = l.rd_kafka_queue_poll(this.commitQueue as never, 0) as unknown as number;
      if (!ev) return;
      try {
        if (l.rd_kafka_event_type(ev as never) !== RD_KAFKA_EVENT_OFFSET_COMMIT) continue;
        const id = Number(l.rd_kafka_event_opaque(ev as never));
        const waiter = this.commits.get(id);
        if (!waiter) continue;
        this.commits.delete(id);
        const code = l.rd_kafka_event_error(ev as never);
        // A per-partition failure is as much a failure as a request-level one.
        const list = l.rd_kafka_event_topic_partition_list(ev as never) as unknown as number;
        const partErr = code === 0 && list ? readPartitionList(list).find((p) => p.err !== 0) : undefined;
        if (code !== 0) waiter.reject(new KafkaError(code, String(l.rd_kafka_event_error_string(ev as never))));
        else if (partErr) waiter.reject(new KafkaError(partErr.err, `commit ${partErr.topic}[${partErr.partition}]`));
        else waiter.resolve();
      } finally {
        l.rd_kafka_event_destroy(ev as never);
      }
    }
  }
}

function copyBytes(address: number, len: number): Uint8Array | null {
  if (!address) return null;
  if (len === 0) return new Uint8Array(0);
  // toArrayBuffer is a view over librdkafka's memory; slice() copies it before the message is destroyed.
  return new Uint8Array(toArrayBuffer(address as never, 0, len)).slice();
}

/**
 * Messages were taken from librdkafka but could not be handed out, and the fetch position could not be moved
 * back to them: consuming on would skip them. The caller must stop without committing past what it processed.
 */
export class PositionLostError extends Error {
  override name = "PositionLostError";
}

/** Keeps the lowest offset seen per topic-partition. */
export function addRewind(into: Map<string, TopicPartitionOffset>, topic: string, partition: number, offset: bigint): void {
  const key = `${partition}\u0000${topic}`;
  const at = into.get(key);
  if (!at || offset < at.offset) into.set(key, { topic, partition, offset });
}
