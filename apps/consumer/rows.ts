/**
 * CapturedEvent (Kafka value) -> ClickHouse `events` row. Properties are stored twice: the raw JSON string, and
 * top-level keys with their values as text in parallel arrays that filters and breakdowns read without JSON
 * functions (absent on ClickHouse 18.16).
 */
import { clickhouseDateTime, type EventRow, millisecondOf, propertyArrays } from "../../lib/events/event-row.ts";
import type { CapturedEvent } from "../../lib/events/captured-event.ts";

export function toRow(e: CapturedEvent, partition: number, offset: bigint, insertedAt: string): EventRow {
  const { keys, values } = propertyArrays(e.properties);
  return {
    uuid: e.uuid,
    team_id: e.team_id,
    event: e.event,
    distinct_id: e.distinct_id,
    timestamp: clickhouseDateTime(e.timestamp),
    msec: millisecondOf(e.timestamp),
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
