/**
 * Kafka producer on librdkafka through bun:ffi.
 *
 * Each produce() returns a promise settled by the broker's delivery report. Reports arrive through the event API
 * (rd_kafka_conf_set_events(DR) + rd_kafka_queue_poll with timeout 0), polled by a timer only while deliveries are
 * outstanding, so the JS event loop is never blocked and an idle producer costs nothing. Payloads are copied by
 * librdkafka (RD_KAFKA_MSG_F_COPY), so JS buffers are free again as soon as produce() returns.
 */
import { ptr, read } from "bun:ffi";
import {
  buildConf,
  cstr,
  ERR,
  KafkaError,
  lib,
  MSG,
  newClient,
  RD_KAFKA_EVENT_DR,
  RD_KAFKA_EVENT_ERROR,
  RD_KAFKA_EVENT_STATS,
  RD_KAFKA_MSG_F_COPY,
  RD_KAFKA_PARTITION_UA,
  RD_KAFKA_PRODUCER,
  RD_KAFKA_PURGE_F_INFLIGHT,
  RD_KAFKA_PURGE_F_NON_BLOCKING,
  RD_KAFKA_PURGE_F_QUEUE,
  takeError,
  VTYPE,
  VU,
} from "./librdkafka.ts";
import type { Bytes, DeliveryReport, OutgoingMessage } from "./types.ts";

export type KafkaProps = Record<string, string | number | boolean>;

/** Defaults chosen for "a 202 means stored": every in-sync replica has the event, retries cannot duplicate it. */
export const PRODUCER_DEFAULTS: KafkaProps = {
  acks: "all",
  "enable.idempotence": true,
  // Same key -> same partition as the Java client (murmur2); keyless messages spread randomly.
  partitioner: "murmur2_random",
  // Fewer, fuller produce requests: measured with capture at 4k events/s on the co-located stack, linger 5 -> 20 ms
  // took the broker from 27% to 15% of a core for +9 ms at p50.
  "linger.ms": 20,
  "batch.num.messages": 10000,
  "queue.buffering.max.messages": 1_000_000,
  "queue.buffering.max.kbytes": 1_048_576,
  "message.timeout.ms": 30_000,
  // While the broker is unreachable, librdkafka only scans for timed-out messages when the broker thread wakes
  // for a reconnect attempt, and the default backoff grows to 10 s: measured with message.timeout.ms=5000, the
  // first _MSG_TIMED_OUT arrived 8.6 s after produce(). Capping the backoff at 1 s keeps timeouts within
  // message.timeout.ms + ~1 s (tests/kafka/broker-down.test.ts) and reconnects within a second of recovery.
  "reconnect.backoff.max.ms": 1000,
  // Measured with the broker on the same 2-core machine: lz4 cost ~40% of producer throughput (bench/results/kafka-*).
  // CPU, not bandwidth, is what a co-located stack runs out of; set CAPTURE_KAFKA_COMPRESSION_TYPE=lz4 for remote brokers.
  "compression.type": "none",
};

export interface ProducerOptions {
  /** Errors reported by librdkafka outside a delivery (broker down, fatal idempotence errors, ...). */
  onError?: (err: KafkaError, fatal: boolean) => void;
  /** Parsed librdkafka statistics, when `statistics.interval.ms` > 0. */
  onStats?: (stats: Record<string, unknown>) => void;
  /** How often the delivery-report queue is polled while deliveries are outstanding. */
  pollIntervalMs?: number;
}

interface Single {
  kind: "single";
  resolve: (r: DeliveryReport) => void;
  reject: (e: KafkaError) => void;
  topic: string;
}

interface Batch {
  kind: "batch";
  topic: string;
  reports: DeliveryReport[];
  remaining: number;
  error: KafkaError | null;
  resolve: (r: DeliveryReport[]) => void;
  reject: (e: KafkaError) => void;
}

type Pending = Single | Batch;

/**
 * Each produce()/produceMany() call owns a slot (1 .. 2^32-1, wrapping); a message's opaque is
 * index * 2^32 + slot, index being its position in its batch (0 for produce()). One map entry per call, not per
 * message, and the opaque is read back as two u32 halves: no BigInt on the hot path.
 */
const SLOT_LIMIT = 0xffffffff;
const TWO_32 = 4294967296;
/** Largest batch one slot describes; longer produceMany() inputs are split. */
const MAX_BATCH = 1_000_000;

const DR_ARRAY_SIZE = 8192;
const encoder = new TextEncoder();

/** A growable scratch buffer for one produce call; librdkafka copies out of it before produce returns. */
class Scratch {
  buf = new Uint8Array(64 * 1024);
  address = ptr(this.buf);
  ensure(bytes: number): void {
    if (bytes <= this.buf.length) return;
    let size = this.buf.length;
    while (size < bytes) size *= 2;
    // Keep what was already laid out: produceMany fills the buffer incrementally.
    const grown = new Uint8Array(size);
    grown.set(this.buf);
    this.buf = grown;
    this.address = ptr(this.buf);
  }
  /** Copies `data` at `at`, returning its length. */
  put(data: Bytes, at: number): number {
    if (typeof data === "string") {
      this.ensure(at + data.length * 3);
      return encoder.encodeInto(data, this.buf.subarray(at)).written;
    }
    this.ensure(at + data.length);
    this.buf.set(data, at);
    return data.length;
  }
}

export class Producer {
  readonly rk: number;
  private readonly queue: number;
  private readonly topics = new Map<string, number>();
  private readonly pending = new Map<number, Pending>();
  /** Messages handed to librdkafka whose delivery report has not been served yet. */
  private open = 0;
  private nextSlot = 1;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly idleTimer: ReturnType<typeof setInterval>;
  private readonly drArray = new BigUint64Array(DR_ARRAY_SIZE);
  private readonly drArrayAddr = ptr(this.drArray);
  /** The same pointers as u32 halves, read without creating BigInts. */
  private readonly drWords = new Uint32Array(this.drArray.buffer);
  private readonly scratch = new Scratch();
  private closed = false;
  private fatal: KafkaError | null = null;
  private readonly pollIntervalMs: number;

  constructor(
    props: KafkaProps,
    private readonly opts: ProducerOptions = {},
  ) {
    const merged = { ...PRODUCER_DEFAULTS, ...props };
    const conf = buildConf(merged);
    const statsOn = Number(merged["statistics.interval.ms"] ?? 0) > 0;
    lib().rd_kafka_conf_set_events(
      conf as never,
      RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR | (statsOn ? RD_KAFKA_EVENT_STATS : 0),
    );
    this.rk = newClient(RD_KAFKA_PRODUCER, conf);
    this.queue = lib().rd_kafka_queue_get_main(this.rk as never) as unknown as number;
    this.pollIntervalMs = opts.pollIntervalMs ?? 1;
    // Errors and statistics also arrive while nothing is outstanding; a slow unref'd timer picks them up.
    this.idleTimer = setInterval(() => this.poll(), 100);
    this.idleTimer.unref();
  }

  /** Messages librdkafka still holds (queued or in flight): the producer's queue depth. */
  outstanding(): number {
    return lib().rd_kafka_outq_len(this.rk as never);
  }

  /** Messages whose delivery is still open (their promise not settled yet). */
  inFlight(): number {
    return this.open;
  }

  /**
   * Enqueues one message; resolves with its partition and offset once the broker acknowledged it (acks=all),
   * rejects with a KafkaError (e.g. _MSG_TIMED_OUT). QUEUE_FULL rejects at once: back-pressure, never a drop.
   */
  produce(topic: string, key: Bytes | null, value: Bytes | null, headers?: Record<string, Bytes>): Promise<DeliveryReport> {
    const early = this.refuse();
    if (early) return Promise.reject(early);
    const rkt = this.topic(topic);
    const slot = this.slot();
    const { promise, resolve, reject } = Promise.withResolvers<DeliveryReport>();
    const err = headers ? this.produceVa(rkt, key, value, headers, slot) : this.produceOne(rkt, key, value, slot);
    if (err) return Promise.reject(err);
    this.pending.set(slot, { kind: "single", resolve, reject, topic });
    this.open++;
    this.schedule();
    return promise;
  }

  /**
   * Fast path: enqueues many messages in one call (rd_kafka_produce_batch); resolves with every delivery report,
   * in input order, or rejects with the first error once all have settled. Messages that could not be enqueued
   * (QUEUE_FULL) reject the batch without waiting for the others' reports to matter.
   */
  produceMany(topic: string, messages: OutgoingMessage[]): Promise<DeliveryReport[]> {
    const early = this.refuse();
    if (early) return Promise.reject(early);
    if (messages.length === 0) return Promise.resolve([]);
    if (messages.length > MAX_BATCH) {
      const parts: Promise<DeliveryReport[]>[] = [];
      for (let i = 0; i < messages.length; i += MAX_BATCH) parts.push(this.produceMany(topic, messages.slice(i, i + MAX_BATCH)));
      return Promise.allSettled(parts).then((rs) => {
        const failed = rs.find((r) => r.status === "rejected");
        if (failed) throw failed.reason;
        return rs.flatMap((r) => (r as PromiseFulfilledResult<DeliveryReport[]>).value);
      });
    }
    const { promise, resolve, reject } = Promise.withResolvers<DeliveryReport[]>();
    const batch: Batch = { kind: "batch", topic, reports: new Array(messages.length), remaining: messages.length, error: null, resolve, reject };
    const rkt = this.topic(topic);
    const slot = this.slot();

    if (messages.some((m) => m.headers)) {
      // produce_batch cannot carry headers: fall back to one produceva per message.
      let enqueued = 0;
      messages.forEach((m, index) => {
        const err = this.produceVa(rkt, m.key ?? null, m.value, m.headers ?? {}, (BigInt(index) << 32n) | BigInt(slot));
        if (err) this.settleBatch(batch, index, null, err);
        else enqueued++;
      });
      this.track(slot, batch, enqueued);
      return promise;
    }

    // Lay every key and value out in one scratch buffer and describe them with rd_kafka_message_t structs.
    const n = messages.length;
    const structs = new ArrayBuffer(n * MSG.size);
    // 64-bit fields written as little-endian u32 halves (the buffer starts zeroed): no BigInt per field.
    const u32 = new Uint32Array(structs);
    const s = this.scratch;
    let at = 0;
    const spans = new Array<number>(n * 4);
    for (let i = 0; i < n; i++) {
      const m = messages[i]!;
      const vLen = m.value == null ? 0 : s.put(m.value, at);
      spans[i * 4] = m.value == null ? -1 : at;
      spans[i * 4 + 1] = vLen;
      at += vLen;
      const kLen = m.key == null ? 0 : s.put(m.key, at);
      spans[i * 4 + 2] = m.key == null ? -1 : at;
      spans[i * 4 + 3] = kLen;
      at += kLen;
    }
    // The scratch buffer may have grown while filling: take its address only now.
    const base = s.address;
    for (let i = 0; i < n; i++) {
      const w = (i * MSG.size) / 4;
      const vAt = spans[i * 4]!;
      const kAt = spans[i * 4 + 2]!;
      if (vAt >= 0) {
        const a = base + vAt;
        u32[w + MSG.payload / 4] = a % TWO_32;
        u32[w + MSG.payload / 4 + 1] = Math.floor(a / TWO_32);
      }
      u32[w + MSG.len / 4] = spans[i * 4 + 1]!;
      if (kAt >= 0) {
        const a = base + kAt;
        u32[w + MSG.key / 4] = a % TWO_32;
        u32[w + MSG.key / 4 + 1] = Math.floor(a / TWO_32);
      }
      u32[w + MSG.key_len / 4] = spans[i * 4 + 3]!;
      u32[w + MSG._private / 4] = slot;
      u32[w + MSG._private / 4 + 1] = i;
    }
    const structBytes = new Uint8Array(structs);
    const enqueued = lib().rd_kafka_produce_batch(rkt as never, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, structBytes, n);
    if (enqueued !== n) {
      // Some were refused (e.g. QUEUE_FULL): their err field says which; they settle now.
      const errs = new Int32Array(structs);
      for (let i = 0; i < n; i++) {
        const code = errs[(i * MSG.size) / 4 + MSG.err / 4]!;
        if (code !== 0) this.settleBatch(batch, i, null, new KafkaError(code));
      }
    }
    this.track(slot, batch, enqueued);
    return promise;
  }

  /** Waits (without blocking the event loop) until every queued message was delivered or failed. */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.outstanding() > 0 || this.open > 0) {
      this.poll();
      if (performance.now() >= deadline) {
        throw new KafkaError(ERR._TIMED_OUT, `flush: ${this.outstanding()} message(s) still queued after ${timeoutMs} ms`);
      }
      await Bun.sleep(2);
    }
  }

  /** Flushes, fails whatever could not be delivered in time, and releases the librdkafka handle. */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush(timeoutMs);
    } catch {
      // Undeliverable messages: purge them so their promises reject (_PURGE_QUEUE / _PURGE_INFLIGHT) now.
      lib().rd_kafka_purge(this.rk as never, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING);
      const until = performance.now() + 2000;
      while (this.open > 0 && performance.now() < until) {
        this.poll();
        await Bun.sleep(5);
      }
    }
    this.closed = true;
    clearInterval(this.idleTimer);
    clearTimeout(this.timer);
    const destroyed = new KafkaError(ERR._DESTROY, "producer closed before delivery");
    for (const p of this.pending.values()) {
      if (p.kind === "single") p.reject(destroyed);
      else p.reject(p.error ?? destroyed);
    }
    this.pending.clear();
    this.open = 0;
    const l = lib();
    for (const rkt of this.topics.values()) l.rd_kafka_topic_destroy(rkt as never);
    this.topics.clear();
    l.rd_kafka_queue_destroy(this.queue as never);
    l.rd_kafka_destroy(this.rk as never);
  }

  // ---- internals ----

  private slot(): number {
    const slot = this.nextSlot;
    this.nextSlot = slot === SLOT_LIMIT ? 1 : slot + 1;
    return slot;
  }

  /** Registers a batch whose `enqueued` messages now wait for delivery reports (the rest already settled). */
  private track(slot: number, batch: Batch, enqueued: number): void {
    if (enqueued <= 0) return;
    this.pending.set(slot, batch);
    this.open += enqueued;
    this.schedule();
  }

  private refuse(): KafkaError | null {
    if (this.closed) return new KafkaError(ERR._DESTROY, "producer is closed");
    return this.fatal;
  }

  private topic(name: string): number {
    let rkt = this.topics.get(name);
    if (rkt === undefined) {
      rkt = lib().rd_kafka_topic_new(this.rk as never, cstr(name), null) as unknown as number;
      if (!rkt) throw new KafkaError(lib().rd_kafka_last_error(), `cannot create topic handle for ${name}`);
      this.topics.set(name, rkt);
    }
    return rkt;
  }

  private produceOne(rkt: number, key: Bytes | null, value: Bytes | null, slot: number): KafkaError | null {
    const s = this.scratch;
    const vLen = value == null ? 0 : s.put(value, 0);
    const kLen = key == null ? 0 : s.put(key, vLen);
    const base = s.address;
    const rc = lib().rd_kafka_produce(
      rkt as never,
      RD_KAFKA_PARTITION_UA,
      RD_KAFKA_MSG_F_COPY,
      (value == null ? null : base) as never,
      vLen,
      (key == null ? null : base + vLen) as never,
      kLen,
      slot as never,
    );
    return rc === 0 ? null : new KafkaError(lib().rd_kafka_last_error());
  }

  /** rd_kafka_produceva: the only produce call that takes headers without varargs. */
  private produceVa(rkt: number, key: Bytes | null, value: Bytes | null, headers: Record<string, Bytes>, opaque: number | bigint): KafkaError | null {
    const s = this.scratch;
    const entries = Object.entries(headers);
    const count = 5 + entries.length;
    const vus = new ArrayBuffer(count * VU.size);
    const dv = new DataView(vus);
    // Lay out value, key, then each header's NUL-terminated name and value in the scratch buffer.
    let at = 0;
    const vAt = at;
    const vLen = value == null ? 0 : s.put(value, at);
    at += vLen;
    const kAt = at;
    const kLen = key == null ? 0 : s.put(key, at);
    at += kLen;
    const hdr: [number, number, number][] = [];
    for (const [name, val] of entries) {
      const nAt = at;
      at += s.put(name, at);
      s.ensure(at + 1);
      s.buf[at++] = 0;
      const hvAt = at;
      const hvLen = s.put(val, at);
      at += hvLen;
      hdr.push([nAt, hvAt, hvLen]);
    }
    const base = s.address;
    let i = 0;
    const vu = (type: number, ...words: (number | bigint)[]) => {
      const o = i++ * VU.size;
      dv.setInt32(o + VU.vtype, type, true);
      words.forEach((w, j) => dv.setBigInt64(o + VU.u + j * 8, BigInt(w), true));
    };
    vu(VTYPE.RKT, rkt);
    vu(VTYPE.MSGFLAGS, RD_KAFKA_MSG_F_COPY);
    vu(VTYPE.VALUE, value == null ? 0 : base + vAt, vLen);
    vu(VTYPE.KEY, key == null ? 0 : base + kAt, kLen);
    vu(VTYPE.OPAQUE, opaque);
    for (const [nAt, hvAt, hvLen] of hdr) vu(VTYPE.HEADER, base + nAt, base + hvAt, hvLen);
    const err = lib().rd_kafka_produceva(this.rk as never, new Uint8Array(vus), count) as unknown as number;
    return takeError(err);
  }

  private schedule(): void {
    if (this.timer === undefined && this.open > 0 && !this.closed) {
      this.timer = setTimeout(this.tick, this.pollIntervalMs);
    }
  }

  private readonly tick = () => {
    this.timer = undefined;
    this.poll();
    this.schedule();
  };

  /** Serves every event waiting on the queue (timeout 0: never waits). */
  poll(): void {
    if (this.closed) return;
    const l = lib();
    for (let served = 0; served < 10_000; served++) {
      const ev = l.rd_kafka_queue_poll(this.queue as never, 0) as unknown as number;
      if (!ev) return;
      try {
        const type = l.rd_kafka_event_type(ev as never);
        if (type === RD_KAFKA_EVENT_DR) this.deliveries(ev);
        else if (type === RD_KAFKA_EVENT_ERROR) this.error(ev);
        else if (type === RD_KAFKA_EVENT_STATS) this.stats(ev);
      } finally {
        l.rd_kafka_event_destroy(ev as never);
      }
    }
  }

  private deliveries(ev: number): void {
    const l = lib();
    for (;;) {
      // The event owns its messages; rd_kafka_event_message_array hands out the next slice of pointers.
      const n = Number(l.rd_kafka_event_message_array(ev as never, this.drArrayAddr as never, DR_ARRAY_SIZE));
      const words = this.drWords;
      let lastSlot = 0;
      let p: Pending | undefined;
      for (let i = 0; i < n; i++) {
        const m = words[2 * i]! + words[2 * i + 1]! * TWO_32;
        const slot = read.u32(m as never, MSG._private);
        // Reports of one batch arrive together: look its entry up once per run of equal slots.
        if (slot !== lastSlot) {
          lastSlot = slot;
          p = this.pending.get(slot);
        }
        if (!p) continue;
        this.open--;
        const code = read.i32(m as never, MSG.err);
        const err = code === 0 ? null : new KafkaError(code);
        const report = err ? null : { topic: p.topic, partition: read.i32(m as never, MSG.partition), offset: read.i64(m as never, MSG.offset) };
        if (p.kind === "single") {
          this.pending.delete(slot);
          if (err) p.reject(err);
          else p.resolve(report!);
          p = undefined;
        } else if (this.settleBatch(p, read.u32(m as never, MSG._private + 4), report, err)) {
          this.pending.delete(slot);
          p = undefined;
        }
      }
      if (n < DR_ARRAY_SIZE) return;
    }
  }

  /** Records one message's outcome; true when it was the batch's last and the batch promise settled. */
  private settleBatch(b: Batch, index: number, report: DeliveryReport | null, err: KafkaError | null): boolean {
    if (err) b.error ??= err;
    else b.reports[index] = report!;
    if (--b.remaining > 0) return false;
    if (b.error) b.reject(b.error);
    else b.resolve(b.reports);
    return true;
  }

  private error(ev: number): void {
    const l = lib();
    const code = l.rd_kafka_event_error(ev as never);
    const fatal = l.rd_kafka_event_error_is_fatal(ev as never) !== 0;
    const err = new KafkaError(code, String(l.rd_kafka_event_error_string(ev as never)));
    // A fatal error (e.g. idempotence violated) makes the instance unusable: refuse new messages loudly.
    if (fatal) this.fatal = err;
    this.opts.onError?.(err, fatal);
  }

  private stats(ev: number): void {
    if (!this.opts.onStats) return;
    try {
      this.opts.onStats(JSON.parse(String(lib().rd_kafka_event_stats(ev as never))));
    } catch {
      // A malformed statistics document is not worth failing the producer over.
    }
  }
}
