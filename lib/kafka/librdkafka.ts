/**
 * librdkafka's C API through bun:ffi: the symbols we call, the struct layouts we read and the constants we use,
 * pinned in this one module. tests/kafka/layout.test.ts compiles a C probe against rdkafka.h and checks every
 * offset and constant here, so a different librdkafka build cannot silently misread memory. It does so for both
 * builds we ship on: Debian bookworm's 2.0.2 (native stack) and trixie's 2.8.0 (Docker image), whose layouts
 * and constants are the same, so one set serves both; a release that differs fails that test first.
 *
 * Why FFI and not @confluentinc/kafka-javascript: see DESIGN.md decision 1 (the NAN addon cannot load in Bun).
 */
import { CString, dlopen, FFIType, read, toArrayBuffer } from "bun:ffi";

const { ptr, i32, i64, u64, void: voidT, cstring, function: fn } = FFIType;

const symbols = {
  rd_kafka_version_str: { args: [], returns: cstring },
  rd_kafka_err2name: { args: [i32], returns: cstring },
  rd_kafka_err2str: { args: [i32], returns: cstring },

  rd_kafka_conf_new: { args: [], returns: ptr },
  rd_kafka_conf_set: { args: [ptr, ptr, ptr, ptr, u64], returns: i32 },
  rd_kafka_conf_destroy: { args: [ptr], returns: voidT },
  rd_kafka_conf_set_events: { args: [ptr, i32], returns: voidT },
  rd_kafka_conf_set_rebalance_cb: { args: [ptr, fn], returns: voidT },

  rd_kafka_new: { args: [i32, ptr, ptr, u64], returns: ptr },
  rd_kafka_destroy: { args: [ptr], returns: voidT },
  rd_kafka_name: { args: [ptr], returns: cstring },

  rd_kafka_topic_new: { args: [ptr, ptr, ptr], returns: ptr },
  rd_kafka_topic_destroy: { args: [ptr], returns: voidT },
  rd_kafka_topic_name: { args: [ptr], returns: cstring },

  rd_kafka_produce: { args: [ptr, i32, i32, ptr, u64, ptr, u64, ptr], returns: i32 },
  rd_kafka_produce_batch: { args: [ptr, i32, i32, ptr, i32], returns: i32 },
  rd_kafka_produceva: { args: [ptr, ptr, u64], returns: ptr },
  rd_kafka_errno2err: { args: [i32], returns: i32 },
  rd_kafka_last_error: { args: [], returns: i32 },
  rd_kafka_flush: { args: [ptr, i32], returns: i32 },
  rd_kafka_purge: { args: [ptr, i32], returns: i32 },
  rd_kafka_outq_len: { args: [ptr], returns: i32 },

  rd_kafka_error_code: { args: [ptr], returns: i32 },
  rd_kafka_error_string: { args: [ptr], returns: cstring },
  rd_kafka_error_destroy: { args: [ptr], returns: voidT },
  rd_kafka_fatal_error: { args: [ptr, ptr, u64], returns: i32 },

  rd_kafka_queue_get_main: { args: [ptr], returns: ptr },
  rd_kafka_queue_get_consumer: { args: [ptr], returns: ptr },
  rd_kafka_queue_new: { args: [ptr], returns: ptr },
  rd_kafka_queue_destroy: { args: [ptr], returns: voidT },
  rd_kafka_queue_poll: { args: [ptr, i32], returns: ptr },
  rd_kafka_yield: { args: [ptr], returns: voidT },

  rd_kafka_event_type: { args: [ptr], returns: i32 },
  rd_kafka_event_destroy: { args: [ptr], returns: voidT },
  rd_kafka_event_message_array: { args: [ptr, ptr, u64], returns: u64 },
  rd_kafka_event_error: { args: [ptr], returns: i32 },
  rd_kafka_event_error_string: { args: [ptr], returns: cstring },
  rd_kafka_event_error_is_fatal: { args: [ptr], returns: i32 },
  rd_kafka_event_stats: { args: [ptr], returns: cstring },
  rd_kafka_event_topic_partition_list: { args: [ptr], returns: ptr },
  rd_kafka_event_opaque: { args: [ptr], returns: ptr },

  rd_kafka_poll_set_consumer: { args: [ptr], returns: i32 },
  rd_kafka_subscribe: { args: [ptr, ptr], returns: i32 },
  rd_kafka_unsubscribe: { args: [ptr], returns: i32 },
  rd_kafka_consume_batch_queue: { args: [ptr, i32, ptr, u64], returns: FFIType.i64_fast },
  rd_kafka_message_destroy: { args: [ptr], returns: voidT },
  rd_kafka_message_timestamp: { args: [ptr, ptr], returns: FFIType.i64_fast },
  rd_kafka_message_headers: { args: [ptr, ptr], returns: i32 },
  rd_kafka_header_get_all: { args: [ptr, u64, ptr, ptr, ptr], returns: i32 },
  rd_kafka_headers_new: { args: [u64], returns: ptr },
  rd_kafka_header_add: { args: [ptr, ptr, i64, ptr, i64], returns: i32 },
  rd_kafka_headers_destroy: { args: [ptr], returns: voidT },
  rd_kafka_commit_queue: { args: [ptr, ptr, ptr, ptr, ptr], returns: i32 },
  rd_kafka_assign: { args: [ptr, ptr], returns: i32 },
  rd_kafka_incremental_assign: { args: [ptr, ptr], returns: ptr },
  rd_kafka_incremental_unassign: { args: [ptr, ptr], returns: ptr },
  rd_kafka_rebalance_protocol: { args: [ptr], returns: cstring },
  rd_kafka_seek_partitions: { args: [ptr, ptr, i32], returns: ptr },
  rd_kafka_pause_partitions: { args: [ptr, ptr], returns: i32 },
  rd_kafka_resume_partitions: { args: [ptr, ptr], returns: i32 },
  rd_kafka_committed: { args: [ptr, ptr, i32], returns: i32 },
  rd_kafka_query_watermark_offsets: { args: [ptr, ptr, i32, ptr, ptr, i32], returns: i32 },
  rd_kafka_consumer_close: { args: [ptr], returns: i32 },
  rd_kafka_metadata: { args: [ptr, i32, ptr, ptr, i32], returns: i32 },
  rd_kafka_metadata_destroy: { args: [ptr], returns: voidT },

  rd_kafka_topic_partition_list_new: { args: [i32], returns: ptr },
  rd_kafka_topic_partition_list_add: { args: [ptr, ptr, i32], returns: ptr },
  rd_kafka_topic_partition_list_destroy: { args: [ptr], returns: voidT },
  rd_kafka_topic_partition_list_copy: { args: [ptr], returns: ptr },
} as const;

export type Lib = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

/** Loads librdkafka once; LIBRDKAFKA_PATH points at another build (e.g. a newer one built from source). */
function load(): Lib {
  const path = process.env.LIBRDKAFKA_PATH || "librdkafka.so.1";
  try {
    return dlopen(path, symbols).symbols;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(
      `cannot load librdkafka from "${path}": ${why}. Install the Debian package librdkafka1 ` +
        "(make deps does) or set LIBRDKAFKA_PATH to a librdkafka.so built elsewhere.",
    );
  }
}

let loaded: Lib | undefined;
export function lib(): Lib {
  loaded ??= load();
  return loaded;
}

export function librdkafkaVersion(): string {
  return String(lib().rd_kafka_version_str());
}

// ---- constants (rdkafka.h) ----

export const RD_KAFKA_PRODUCER = 0;
export const RD_KAFKA_CONSUMER = 1;
export const RD_KAFKA_CONF_OK = 0;

export const RD_KAFKA_PARTITION_UA = -1;
export const RD_KAFKA_MSG_F_COPY = 0x2;
export const RD_KAFKA_PURGE_F_QUEUE = 0x1;
export const RD_KAFKA_PURGE_F_INFLIGHT = 0x2;
export const RD_KAFKA_PURGE_F_NON_BLOCKING = 0x4;

export const RD_KAFKA_OFFSET_BEGINNING = -2n;
export const RD_KAFKA_OFFSET_END = -1n;
export const RD_KAFKA_OFFSET_STORED = -1000n;
export const RD_KAFKA_OFFSET_INVALID = -1001n;

export const RD_KAFKA_EVENT_DR = 0x1;
export const RD_KAFKA_EVENT_ERROR = 0x8;
export const RD_KAFKA_EVENT_REBALANCE = 0x10;
export const RD_KAFKA_EVENT_OFFSET_COMMIT = 0x20;
export const RD_KAFKA_EVENT_STATS = 0x40;

export const ERR = {
  NO_ERROR: 0,
  _DESTROY: -197,
  _TRANSPORT: -195,
  _MSG_TIMED_OUT: -192,
  _PARTITION_EOF: -191,
  _ALL_BROKERS_DOWN: -187,
  _TIMED_OUT: -185,
  _QUEUE_FULL: -184,
  _ASSIGN_PARTITIONS: -175,
  _REVOKE_PARTITIONS: -174,
  _NO_OFFSET: -168,
  _NOENT: -156,
  _PURGE_QUEUE: -152,
  _PURGE_INFLIGHT: -151,
  _FATAL: -150,
} as const;

// ---- struct layouts (x86_64 / aarch64 LP64), checked by tests/kafka/layout.test.ts ----

/** rd_kafka_message_t */
export const MSG = {
  err: 0,
  rkt: 8,
  partition: 16,
  payload: 24,
  len: 32,
  key: 40,
  key_len: 48,
  offset: 56,
  _private: 64,
  size: 72,
} as const;

/** rd_kafka_topic_partition_t */
export const TOPPAR = {
  topic: 0,
  partition: 8,
  offset: 16,
  metadata: 24,
  metadata_size: 32,
  opaque: 40,
  err: 48,
  _private: 56,
  size: 64,
} as const;

/** rd_kafka_topic_partition_list_t */
export const TOPPAR_LIST = { cnt: 0, size: 4, elems: 8 } as const;

/** rd_kafka_vu_t: vtype then a 64-byte union at offset 8. */
export const VU = { vtype: 0, u: 8, size: 72 } as const;
export const VTYPE = {
  END: 0,
  TOPIC: 1,
  RKT: 2,
  PARTITION: 3,
  VALUE: 4,
  KEY: 5,
  OPAQUE: 6,
  MSGFLAGS: 7,
  TIMESTAMP: 8,
  HEADER: 9,
  HEADERS: 10,
} as const;

// ---- small helpers shared by producer, consumer and lag ----

const encoder = new TextEncoder();

/** A NUL-terminated UTF-8 copy of `s` for char* arguments. */
export function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, "utf8");
}

export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

export function errName(code: number): string {
  return String(lib().rd_kafka_err2name(code));
}

export function errString(code: number): string {
  return String(lib().rd_kafka_err2str(code));
}

/** Reads the elements of a rd_kafka_topic_partition_list_t. */
export function readPartitionList(
  list: number,
): { topic: string; partition: number; offset: bigint; err: number }[] {
  const cnt = read.i32(list as never, TOPPAR_LIST.cnt);
  const elems = read.ptr(list as never, TOPPAR_LIST.elems);
  const out = [];
  for (let i = 0; i < cnt; i++) {
    const base = i * TOPPAR.size;
    out.push({
      topic: new CString(read.ptr(elems as never, base + TOPPAR.topic) as never).toString(),
      partition: read.i32(elems as never, base + TOPPAR.partition),
      offset: read.i64(elems as never, base + TOPPAR.offset),
      err: read.i32(elems as never, base + TOPPAR.err),
    });
  }
  return out;
}

/**
 * Builds a rd_kafka_topic_partition_list_t (caller destroys it), setting each element's offset when given.
 * rd_kafka_topic_partition_list_add returns a pointer to the new element, where we write the offset directly.
 */
export function buildPartitionList(items: { topic: string; partition: number; offset?: bigint }[]): number {
  const l = lib();
  const list = l.rd_kafka_topic_partition_list_new(Math.max(items.length, 1)) as unknown as number;
  for (const it of items) {
    const el = l.rd_kafka_topic_partition_list_add(list as never, cstr(it.topic), it.partition) as unknown as number;
    if (it.offset !== undefined) writeI64(el, TOPPAR.offset, it.offset);
  }
  return list;
}

/** Writes an int64 into native memory we own (a partition list element). */
function writeI64(address: number, offset: number, value: bigint): void {
  // toArrayBuffer gives a view over native memory: no copy, so the write lands in librdkafka's struct.
  new DataView(toArrayBuffer(address as never, offset, 8)).setBigInt64(0, value, true);
}

/**
 * Creates a configuration object from librdkafka properties. Throws with librdkafka's own message (which names
 * the property) on the first bad property.
 */
export function buildConf(props: Record<string, string | number | boolean>): number {
  const l = lib();
  const conf = l.rd_kafka_conf_new() as unknown as number;
  const errstr = Buffer.alloc(512);
  for (const [name, value] of Object.entries(props)) {
    const res = l.rd_kafka_conf_set(conf as never, cstr(name), cstr(String(value)), errstr, errstr.length);
    if (res !== RD_KAFKA_CONF_OK) {
      l.rd_kafka_conf_destroy(conf as never);
      const msg = errstr.toString("utf8", 0, Math.max(0, errstr.indexOf(0))).trim();
      throw new KafkaConfigError(name, msg || `invalid value for ${name}`);
    }
  }
  return conf;
}

export class KafkaConfigError extends Error {
  constructor(
    readonly property: string,
    message: string,
  ) {
    // librdkafka names aliases by their canonical name ("acks" -> "request.required.acks"): name what was set too.
    super(`librdkafka configuration: ${message}${message.includes(`"${property}"`) ? "" : ` (property "${property}")`}`);
    this.name = "KafkaConfigError";
  }
}

/** Creates a client handle; librdkafka takes ownership of `conf` on success only. */
export function newClient(type: typeof RD_KAFKA_PRODUCER | typeof RD_KAFKA_CONSUMER, conf: number): number {
  const l = lib();
  const errstr = Buffer.alloc(512);
  const rk = l.rd_kafka_new(type, conf as never, errstr, errstr.length) as unknown as number;
  if (!rk) {
    l.rd_kafka_conf_destroy(conf as never);
    throw new Error(`rd_kafka_new failed: ${errstr.toString("utf8", 0, Math.max(0, errstr.indexOf(0)))}`);
  }
  return rk;
}

/** Turns an rd_kafka_error_t* into a KafkaError (destroying it); null pointer means success. */
export function takeError(errPtr: number | null): KafkaError | null {
  if (!errPtr) return null;
  const l = lib();
  const code = l.rd_kafka_error_code(errPtr as never);
  const message = String(l.rd_kafka_error_string(errPtr as never));
  l.rd_kafka_error_destroy(errPtr as never);
  return new KafkaError(code, message);
}

/** An error from librdkafka with its numeric code and symbolic name (e.g. -192 / _MSG_TIMED_OUT). */
export class KafkaError extends Error {
  override readonly name = "KafkaError";
  readonly codeName: string;
  constructor(
    readonly code: number,
    message?: string,
  ) {
    const codeName = errName(code);
    super(message ? `${codeName}: ${message}` : `${codeName}: ${errString(code)}`);
    this.codeName = codeName;
  }
  /** Errors the caller may retry (the broker or network may come back); permanent ones are not. */
  get retriable(): boolean {
    return (
      this.code === ERR._MSG_TIMED_OUT ||
      this.code === ERR._QUEUE_FULL ||
      this.code === ERR._TRANSPORT ||
      this.code === ERR._ALL_BROKERS_DOWN ||
      this.code === ERR._TIMED_OUT ||
      this.code === ERR._PURGE_QUEUE ||
      this.code === ERR._PURGE_INFLIGHT ||
      (this.code > 0 && this.code !== 10 /* MSG_SIZE_TOO_LARGE */ && this.code !== 2 /* INVALID_MSG */)
    );
  }
}
