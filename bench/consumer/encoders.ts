/**
 * Insert bodies for the `events` columns (in table order) in the formats ClickHouse 18.16 accepts, built from
 * the consumer's EventRow. Each is checked against JSONEachRow by a content hash in the benchmark itself.
 */
import type { EventRow } from "../../lib/events/event-row.ts";

/** JSONEachRow exactly as @clickhouse/client-web builds it (encodeJSON: stringify + "\n", joined). */
export function jsonEachRow(rows: EventRow[]): string {
  return rows.map((r) => `${JSON.stringify(r)}\n`).join("");
}

// ---- TabSeparated -------------------------------------------------------------------------------------------

const TSV_SPECIAL = /[\\\t\n\r\0\b\f]/;
const TSV_REPLACE = /[\\\t\n\r\0\b\f]/g;
const QUOTED_SPECIAL = /[\\'\t\n\r\0\b\f]/;
const QUOTED_REPLACE = /[\\'\t\n\r\0\b\f]/g;
const ESC: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f", "'": "\\'" };
const esc = (c: string) => ESC[c]!;

function tsvString(s: string): string {
  return TSV_SPECIAL.test(s) ? s.replace(TSV_REPLACE, esc) : s;
}

/** Array(String) in the text formats: ['a','b'] with quoted-string escaping (no second TSV escaping). */
function tsvArray(xs: string[]): string {
  let out = "[";
  for (let i = 0; i < xs.length; i++) {
    const s = xs[i]!;
    out += `${i ? "," : ""}'${QUOTED_SPECIAL.test(s) ? s.replace(QUOTED_REPLACE, esc) : s}'`;
  }
  return `${out}]`;
}

export function tabSeparated(rows: EventRow[]): string {
  const lines = new Array<string>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    lines[i] =
      `${r.uuid}\t${r.team_id}\t${tsvString(r.event)}\t${tsvString(r.distinct_id)}\t${r.timestamp}\t${tsvString(r.properties)}\t` +
      `${tsvArray(r.prop_keys)}\t${tsvArray(r.prop_values)}\t${tsvString(r.ip)}\t${r.received_at}\t${r.inserted_at}\t${r.kafka_partition}\t${r.kafka_offset}\n`;
  }
  return lines.join("");
}

// ---- RowBinary ----------------------------------------------------------------------------------------------

const encoder = new TextEncoder();
const HEXVAL = new Uint8Array(128);
for (let i = 0; i < 10; i++) HEXVAL[48 + i] = i;
for (let i = 0; i < 6; i++) HEXVAL[97 + i] = 10 + i;
for (let i = 0; i < 6; i++) HEXVAL[65 + i] = 10 + i;
/** Offsets of the 16 bytes in "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx". */
const UUID_BYTE_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

function varintLen(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

/** "YYYY-MM-DD hh:mm:ss" (UTC) -> epoch seconds. */
function dateTimeSeconds(s: string): number {
  return Date.UTC(+s.slice(0, 4), +s.slice(5, 7) - 1, +s.slice(8, 10), +s.slice(11, 13), +s.slice(14, 16), +s.slice(17, 19)) / 1000;
}

class BinaryWriter {
  buf: Uint8Array;
  view: DataView;
  pos = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }
  ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + extra) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }
  varint(n: number): void {
    this.ensure(10);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }
  string(s: string): void {
    const n = s.length;
    if (n < 128) {
      // Short strings (most keys and values): write ASCII directly, one length byte; fall back on non-ASCII.
      this.ensure(1 + n * 3);
      const b = this.buf;
      const start = this.pos;
      let p = start + 1;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) return this.longString(s);
        b[p++] = c;
      }
      b[start] = n;
      this.pos = p;
      return;
    }
    this.longString(s);
  }
  private longString(s: string): void {
    // Reserve the length prefix for the worst case, encode, then move the bytes if the prefix is shorter.
    const max = s.length * 3;
    const reserve = varintLen(max);
    this.ensure(reserve + max);
    const start = this.pos;
    const { written } = encoder.encodeInto(s, this.buf.subarray(start + reserve));
    const need = varintLen(written);
    if (need !== reserve) this.buf.copyWithin(start + need, start + reserve, start + reserve + written);
    this.pos = start;
    this.varint(written);
    this.pos = start + need + written;
  }
  u16(n: number): void {
    this.ensure(2);
    this.view.setUint16(this.pos, n, true);
    this.pos += 2;
  }
  u32(n: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, n, true);
    this.pos += 4;
  }
  u64(n: number): void {
    this.ensure(8);
    this.view.setBigUint64(this.pos, BigInt(n), true);
    this.pos += 8;
  }
  /** UUID: two little-endian UInt64 halves, i.e. each half's 8 bytes reversed. */
  uuid(s: string): void {
    this.ensure(16);
    const b = this.buf;
    const p = this.pos;
    for (let i = 0; i < 16; i++) {
      const at = UUID_BYTE_AT[i]!;
      const v = (HEXVAL[s.charCodeAt(at)]! << 4) | HEXVAL[s.charCodeAt(at + 1)]!;
      b[p + (i < 8 ? 7 - i : 23 - i)] = v;
    }
    this.pos += 16;
  }
}

export function rowBinary(rows: EventRow[]): Uint8Array {
  const w = new BinaryWriter(rows.length * 1024);
  for (const r of rows) {
    w.uuid(r.uuid);
    w.u32(r.team_id);
    w.string(r.event);
    w.string(r.distinct_id);
    w.u32(dateTimeSeconds(r.timestamp));
    w.string(r.properties);
    w.varint(r.prop_keys.length);
    for (const k of r.prop_keys) w.string(k);
    w.varint(r.prop_values.length);
    for (const v of r.prop_values) w.string(v);
    w.string(r.ip);
    w.u32(dateTimeSeconds(r.received_at));
    w.u32(dateTimeSeconds(r.inserted_at));
    w.u16(r.kafka_partition);
    w.u64(r.kafka_offset);
  }
  return w.buf.subarray(0, w.pos);
}
