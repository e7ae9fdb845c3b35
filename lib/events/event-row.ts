/**
 * A row of the ClickHouse `events` table as JSONEachRow accepts it on every ClickHouse version, and the text
 * forms its columns need. Written by the consumer (from Kafka) and by the seed loader (from the generator).
 */

export interface EventRow {
  uuid: string;
  team_id: number;
  event: string;
  distinct_id: string;
  timestamp: string;
  /** Millisecond within `timestamp`'s second (0..999): 18.16 has no DateTime64. */
  msec: number;
  properties: string;
  prop_keys: string[];
  prop_values: string[];
  ip: string;
  received_at: string;
  /** Sent explicitly: ClickHouse 18.16 fills an omitted JSONEachRow field with zero, not the column DEFAULT. */
  inserted_at: string;
  kafka_partition: number;
  kafka_offset: number;
}

/** "YYYY-MM-DD hh:mm:ss" in UTC: the text DateTime('UTC') parses in JSONEachRow on every ClickHouse version. */
export function clickhouseDateTime(at: string | number | Date): string {
  // Capture writes toISOString() text ("2026-11-27T21:00:00.000Z"): slice it instead of a Date round trip.
  if (typeof at === "string" && at.length === 24 && at.charCodeAt(23) === 90 /* Z */ && at.charCodeAt(10) === 84 /* T */) {
    return `${at.slice(0, 10)} ${at.slice(11, 19)}`;
  }
  const iso = new Date(at).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
}

/** The millisecond within the second of an instant (0..999), the `msec` column. */
export function millisecondOf(at: string | number | Date): number {
  if (typeof at === "string" && at.length === 24 && at.charCodeAt(23) === 90 /* Z */ && at.charCodeAt(19) === 46 /* . */) {
    return Number(at.slice(20, 23));
  }
  const ms = new Date(at).getTime();
  return ((ms % 1000) + 1000) % 1000;
}

/** Stored text of a property value: strings as they are, everything else as its JSON text. */
export function propertyText(value: unknown): string {
  return typeof value === "string" ? value : (JSON.stringify(value) ?? "null");
}

/** Top-level property keys and their values' text, the parallel arrays filters and breakdowns read. */
export function propertyArrays(properties: Record<string, unknown>): { keys: string[]; values: string[] } {
  const keys = Object.keys(properties);
  const values = new Array<string>(keys.length);
  for (let i = 0; i < keys.length; i++) values[i] = propertyText(properties[keys[i]!]);
  return { keys, values };
}
