/**
 * The ClickHouse copy of person state: rows of `persons` and `person_distinct_id` (infrastructure/clickhouse/
 * 003_persons.sql), each with its PostgreSQL version. Queries take the highest version per key, so writing a row
 * twice, or an older one after a newer one, never changes an answer.
 */
import type { ClickHouse } from "../../../lib/clickhouse/client.ts";
import { clickhouseDateTime, propertyArrays } from "../../../lib/events/event-row.ts";
import type { DistinctIdState, PersonState } from "./person-store.ts";

export interface PersonRowSink {
  write(persons: PersonState[], distinctIds: DistinctIdState[]): Promise<void>;
}

export function personRow(p: PersonState) {
  const { keys, values } = propertyArrays(p.properties);
  return {
    team_id: p.teamId,
    id: p.id,
    properties: JSON.stringify(p.properties),
    prop_keys: keys,
    prop_values: values,
    is_identified: p.isIdentified ? 1 : 0,
    is_deleted: p.isDeleted ? 1 : 0,
    created_at: clickhouseDateTime(p.createdAt),
    version: p.version,
  };
}

export const distinctIdRow = (d: DistinctIdState) => ({ team_id: d.teamId, distinct_id: d.distinctId, person_id: d.personId, version: d.version });

export class ClickHousePersonRows implements PersonRowSink {
  constructor(
    private readonly ch: ClickHouse,
    private readonly tables = { persons: "persons", distinctIds: "person_distinct_id" },
  ) {}

  async write(persons: PersonState[], distinctIds: DistinctIdState[]): Promise<void> {
    // Persons first: a query that sees an id's new person then also sees that person's properties.
    if (persons.length) await this.ch.insert({ table: this.tables.persons, values: persons.map(personRow), format: "JSONEachRow" });
    if (distinctIds.length) await this.ch.insert({ table: this.tables.distinctIds, values: distinctIds.map(distinctIdRow), format: "JSONEachRow" });
  }
}
