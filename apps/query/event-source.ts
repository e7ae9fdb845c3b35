/**
 * The rows trends and funnels aggregate: one team's events in a time range, each with the instant in ms (`tk`)
 * and the person it belongs to (`person`), optionally with that person's properties.
 *
 * Millisecond instant: 18.16 has no DateTime64, so `timestamp` (seconds) and `msec` (0..999) are two columns;
 * `tk = toUInt32(timestamp) * 1000 + msec` is a UInt64 that orders events on every ClickHouse version.
 *
 * Persons are resolved at query time, never written onto events (see docs/persons.md): `person_distinct_id`
 * maps each distinct_id to its person (highest version wins), so a merge that arrives after the events still
 * gives them to the person. A distinct_id without a mapping is a person of its own, keyed by the distinct_id.
 */
import { ident, sql, type SqlFragment } from "../../lib/clickhouse/sql.ts";

export interface SourceTables {
  events: string;
  personDistinctId: string;
  persons: string;
}

/** The person tables beside the events table (same database prefix, if the name has one). */
export function tablesOf(eventsTable: string): SourceTables {
  const dot = eventsTable.lastIndexOf(".");
  const prefix = dot < 0 ? "" : eventsTable.slice(0, dot + 1);
  return { events: eventsTable, personDistinctId: `${prefix}person_distinct_id`, persons: `${prefix}persons` };
}

export type PersonMode =
  /** `person` is the distinct_id itself (what the API counted before persons existed; the benchmark's baseline). */
  | "distinct_id"
  /** `person` through person_distinct_id. */
  | "person"
  /** as "person", plus `person_keys` / `person_values` (the person's properties as parallel arrays). */
  | "person_properties";

export const tkExpr = sql`toUInt64(toUInt32(timestamp)) * 1000 + msec`;

/**
 * A subquery (without parentheses) yielding uuid, timestamp, tk, event, distinct_id, prop_keys, prop_values,
 * person [, person_keys, person_values] for events of `projectId` that satisfy `where` (event columns only).
 */
export function eventSource(o: { projectId: number; tables: SourceTables; where: SqlFragment; persons: PersonMode }): SqlFragment {
  const events = sql`SELECT uuid, timestamp, ${tkExpr} AS tk, event, distinct_id, prop_keys, prop_values FROM ${ident(o.tables.events)} WHERE ${o.where}`;
  if (o.persons === "distinct_id") {
    return sql`SELECT uuid, timestamp, tk, event, distinct_id, prop_keys, prop_values, distinct_id AS person FROM (${events})`;
  }
  // ANY LEFT JOIN: one mapping row per distinct_id; an unmapped id gets '' (the String default) on every version.
  const mapping = sql`SELECT distinct_id, argMax(person_id, version) AS mapped_person FROM ${ident(o.tables.personDistinctId)} WHERE team_id = ${o.projectId} GROUP BY distinct_id`;
  const withPerson = sql`SELECT uuid, timestamp, tk, event, distinct_id, prop_keys, prop_values, if(mapped_person = '', distinct_id, mapped_person) AS person
FROM (${events}) AS ev ANY LEFT JOIN (${mapping}) AS pdi USING distinct_id`;
  if (o.persons === "person") return withPerson;
  const props = sql`SELECT id AS person, argMax(prop_keys, version) AS person_keys, argMax(prop_values, version) AS person_values FROM ${ident(o.tables.persons)} WHERE team_id = ${o.projectId} GROUP BY id`;
  return sql`SELECT uuid, timestamp, tk, event, distinct_id, prop_keys, prop_values, person, person_keys, person_values
FROM (${withPerson}) AS ep ANY LEFT JOIN (${props}) AS pp USING person`;
}
