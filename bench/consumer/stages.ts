/**
 * Where a consumer's CPU goes, per event, measured in this process on the same realistic values the topic holds:
 * UTF-8 decode, JSON.parse, valibot validation, toRow, JSONEachRow encoding (what the client does), and the
 * bare Kafka consume rate through lib/kafka (poll + copy out of librdkafka, nothing else).
 */
import * as v from "valibot";
import { clickhouseDateTime, type EventRow } from "../../lib/events/event-row.ts";
import { toRow } from "../../apps/consumer/rows.ts";
import { type CapturedEvent, CapturedEventSchema } from "../../lib/events/captured-event.ts";
import { Consumer } from "../../lib/kafka/consumer.ts";
import { KAFKA, uniqueName } from "../../tests/support/stack.ts";
import { jsonEachRow } from "./encoders.ts";
import type { EventTemplates } from "./events.ts";
import { median } from "./stats.ts";

export interface StageFigures {
  events: number;
  /** Wall-clock microseconds per event, median of the passes (inflated when other processes hold the cores). */
  us_per_event: Record<string, number>;
  /** CPU microseconds per event (process.cpuUsage: this thread plus GC helpers), median of the passes. */
  cpu_us_per_event: Record<string, number>;
  total_cpu_us_per_event: number;
  total_us_per_event: number;
  /** 1e6 / total CPU µs: what one JS thread could do if nothing else (insert, Kafka) cost anything. */
  cpu_ceiling_events_per_s: number;
}

export function stageCosts(templates: EventTemplates, n = 100_000, passes = 3): StageFigures {
  const enc = new TextEncoder();
  const values: Uint8Array[] = Array.from({ length: n }, () => enc.encode(templates.take().value));
  const insertedAt = clickhouseDateTime(Date.now());
  const timings: Record<string, number[]> = { utf8_decode: [], json_parse: [], validate_valibot: [], to_row: [], encode_jsoneachrow: [] };
  const cpu: Record<string, number[]> = { utf8_decode: [], json_parse: [], validate_valibot: [], to_row: [], encode_jsoneachrow: [] };
  const cpuNow = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  let c = 0;
  const mark = (k: string) => {
    const x = cpuNow();
    cpu[k]!.push(x - c);
    c = x;
  };
  for (let pass = 0; pass < passes; pass++) {
    Bun.gc(true);
    c = cpuNow();
    let t = performance.now();
    // As decodeCapturedEvent does it: a new fatal decoder per message.
    const strings = values.map((b) => new TextDecoder("utf-8", { fatal: true }).decode(b));
    let u = performance.now();
    timings.utf8_decode!.push(u - t);
    mark("utf8_decode");
    t = u;
    const parsed = strings.map((s) => JSON.parse(s) as unknown);
    u = performance.now();
    timings.json_parse!.push(u - t);
    mark("json_parse");
    t = u;
    const events = parsed.map((p) => {
      const r = v.safeParse(CapturedEventSchema, p);
      if (!r.success) throw new Error("invalid");
      return r.output as CapturedEvent;
    });
    u = performance.now();
    timings.validate_valibot!.push(u - t);
    mark("validate_valibot");
    t = u;
    const rows: EventRow[] = events.map((e, i) => toRow(e, i % 12, BigInt(i), insertedAt));
    u = performance.now();
    timings.to_row!.push(u - t);
    mark("to_row");
    t = u;
    const body = jsonEachRow(rows);
    u = performance.now();
    timings.encode_jsoneachrow!.push(u - t);
    mark("encode_jsoneachrow");
    if (body.length === 0) throw new Error("empty body");
  }
  const us: Record<string, number> = {};
  let total = 0;
  for (const [k, xs] of Object.entries(timings)) {
    us[k] = Math.round((median(xs) * 1000 * 100) / n) / 100;
    total += us[k]!;
  }
  total = Math.round(total * 100) / 100;
  const cus: Record<string, number> = {};
  let ctotal = 0;
  for (const [k, xs] of Object.entries(cpu)) {
    cus[k] = Math.round((median(xs) * 100) / n) / 100;
    ctotal += cus[k]!;
  }
  ctotal = Math.round(ctotal * 100) / 100;
  return { events: n, us_per_event: us, total_us_per_event: total, cpu_us_per_event: cus, total_cpu_us_per_event: ctotal, cpu_ceiling_events_per_s: Math.round(1e6 / ctotal) };
}

/** Messages/s a lib/kafka Consumer takes from `topic` (fresh group, from the start), nothing else done. */
export async function kafkaPollRate(topic: string, n: number, timeoutS = 60): Promise<{ messages: number; seconds: number; messages_per_s: number; mb_per_s: number }> {
  const c = new Consumer({ "bootstrap.servers": KAFKA, "group.id": uniqueName("bench-pollonly") });
  c.subscribe([topic]);
  let got = 0;
  let bytes = 0;
  let t0 = 0;
  const deadline = performance.now() + timeoutS * 1000;
  try {
    while (got < n && performance.now() < deadline) {
      const ms = await c.poll(10_000);
      if (ms.length === 0) {
        await Bun.sleep(1);
        continue;
      }
      if (t0 === 0) t0 = performance.now();
      got += ms.length;
      for (const m of ms) bytes += m.value?.length ?? 0;
    }
  } finally {
    await c.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { messages: got, seconds: Math.round(seconds * 10) / 10, messages_per_s: Math.round(got / seconds), mb_per_s: Math.round(bytes / seconds / 1e5) / 10 };
}
