/**
 * CapturedEvent (Kafka value) -> ClickHouse `events` row. Properties are stored twice: the raw JSON string, and
 * top-level keys with their values as strings (numbers and booleans as their JSON text, objects as JSON) in
 * parallel arrays that filters and breakdowns read without JSON functions (absent on ClickHouse 18.16).
 */
import type { CapturedEvent } from "../../lib/events/captured-event.ts";

export interface EventRow {
  uuid: string;
  team_id: number;
  event: string;
  distinct_id: string;
  timestamp: string;
  properties: string;
  prop_keys: string[];
  prop_values: string[];
  ip: string;
  received_at: string;
  inserted_at: string;
  kafka_partition: number;
  kafka_offset: number;
}

/** "YYYY-MM-DD hh:mm:ss" in UTC: what DateTime('UTC') parses in JSONEachRow on every ClickHouse version. */
export function clickhouseDateTime(iso: string | number | Date): string {
  const d = new Date(iso);
  return d.toISOString().slice(0, 19).replace("T", " ");
}

export function propertyValue(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v) ?? "null";
}

export function toRow(e: CapturedEvent, partition: number, offset: bigint, insertedAt: string): EventRow {
  const keys = Object.keys(e.properties);
  const values = new Array<string>(keys.length);
  for (let i = 0; i < keys.length; i++) values[i] = propertyValue(e.properties[keys[i]!]);
  return {
    uuid: e.uuid,
    team_id: e.team_id,
    event: e.event,
    distinct_id: e.distinct_id,
    timestamp: clickhouseDateTime(e.timestamp),
    properties: JSON.stringify(e.properties),
    prop_keys: keys,
    prop_values: values,
    ip: e.ip,
    received_at: clickhouseDateTime(e.received_at),
    inserted_at: insertedAt,
    kafka_partition: partition,
    kafka_offset: Number(offset),
  };
}
