/**
 * Person state in PostgreSQL: one transaction per PersonUpdate, with row locks, so two consumers handling the two
 * ids of one merge at the same moment (they may sit on different partitions) serialise instead of racing.
 *
 * Lock order, the same in every transaction: the distinct_id rows involved (sorted), then their persons (sorted by
 * id). A merge also moves the merged person's other distinct_ids; should that meet a transaction holding one of
 * them, PostgreSQL breaks the deadlock and the loser is retried (as are unique violations from two transactions
 * creating the same distinct_id). Every outcome is idempotent: applying an update again changes nothing more.
 *
 * Each transaction returns the rows it changed, with their versions, for the ClickHouse copy (person-rows.ts), and
 * the current rows of what it touched even when nothing changed (a retry after a failed copy must still send them).
 */
import type { Sql, TransactionSql } from "postgres";
import type { PersonUpdate } from "./person-update.ts";

export interface PersonState {
  id: string;
  teamId: number;
  properties: Record<string, unknown>;
  isIdentified: boolean;
  createdAt: Date;
  version: number;
  isDeleted: boolean;
}

export interface DistinctIdState {
  teamId: number;
  distinctId: string;
  personId: string;
  version: number;
}

export type MergeOutcome =
  | "created"
  | "added_id"
  | "merged"
  | "already_merged"
  | "refused_identified"
  | "no_other_id"
  | "invalid_other_id"
  | "self";

export type PropertiesOutcome = "updated" | "unchanged" | "too_large";

export interface ApplyResult {
  merge?: MergeOutcome;
  properties?: PropertiesOutcome;
  persons: PersonState[];
  distinctIds: DistinctIdState[];
}

export interface PersonStoreOptions {
  /** Largest person properties (JSON bytes) an update may produce; a larger result is refused whole. */
  maxPropertiesBytes: number;
  /** Transactions tried per update before the error goes to the caller (which retries the batch). */
  maxAttempts?: number;
}

/** PostgreSQL errors that mean "try the transaction again": serialization, deadlock, unique violation. */
const RETRY_CODES = new Set(["40001", "40P01", "23505"]);

interface PersonRow {
  id: string;
  team_id: string;
  properties: Record<string, unknown>;
  is_identified: boolean;
  created_at: Date;
  version: string;
}

const toState = (r: PersonRow): PersonState => ({
  id: r.id,
  teamId: Number(r.team_id),
  properties: r.properties,
  isIdentified: r.is_identified,
  createdAt: r.created_at,
  version: Number(r.version),
  isDeleted: false,
});

/** $set_once (only keys not set), then $set, then $unset, as PostHog applies them. */
export function applyProperties(current: Record<string, unknown>, u: PersonUpdate): Record<string, unknown> {
  const next = { ...current };
  for (const [k, v] of Object.entries(u.setOnce ?? {})) if (!Object.hasOwn(next, k)) next[k] = v;
  for (const [k, v] of Object.entries(u.set ?? {})) next[k] = v;
  for (const k of u.unset ?? []) delete next[k];
  return next;
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export class PersonStore {
  constructor(
    private readonly sql: Sql,
    private readonly opts: PersonStoreOptions,
  ) {}

  async apply(u: PersonUpdate): Promise<ApplyResult> {
    const attempts = this.opts.maxAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.sql.begin((tx) => this.applyIn(tx, u))) as ApplyResult;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (attempt >= attempts || !code || !RETRY_CODES.has(code)) throw err;
      }
    }
  }

  private async applyIn(tx: TransactionSql, u: PersonUpdate): Promise<ApplyResult> {
    const team = u.teamId;
    const out: ApplyResult = { persons: [], distinctIds: [] };
    if (u.mergeSkipped) out.merge = u.mergeSkipped;
    const ids = [...new Set([u.distinctId, ...(u.merge ? [u.merge.otherId] : [])])].sort();
    const idRows = await tx<{ distinct_id: string; person_id: string; version: string }[]>`
      SELECT distinct_id, person_id, version FROM person_distinct_ids
      WHERE team_id = ${team} AND distinct_id IN ${tx(ids)} ORDER BY distinct_id FOR UPDATE`;
    const personOf = new Map(idRows.map((r) => [r.distinct_id, r.person_id]));
    const personIds = [...new Set(idRows.map((r) => r.person_id))].sort();
    const persons = new Map<string, PersonState>();
    if (personIds.length > 0) {
      const rows = await tx<PersonRow[]>`
        SELECT id, team_id, properties, is_identified, created_at, version FROM persons
        WHERE id IN ${tx(personIds)} ORDER BY id FOR UPDATE`;
      for (const r of rows) persons.set(r.id, toState(r));
    }
    const changed = new Set<PersonState>();
    const addId = async (distinctId: string, person: PersonState) => {
      await tx`INSERT INTO person_distinct_ids (team_id, distinct_id, person_id, version) VALUES (${team}, ${distinctId}, ${person.id}, 0)`;
      out.distinctIds.push({ teamId: team, distinctId, personId: person.id, version: 0 });
    };
    const create = async (identified: boolean): Promise<PersonState> => {
      const p: PersonState = {
        id: Bun.randomUUIDv7(),
        teamId: team,
        properties: {},
        isIdentified: identified,
        createdAt: new Date(Number.isFinite(u.at) ? u.at : Date.now()),
        version: 0,
        isDeleted: false,
      };
      await tx`INSERT INTO persons (id, team_id, properties, is_identified, created_at, version)
        VALUES (${p.id}, ${team}, ${tx.json({})}, ${identified}, ${p.createdAt}, 0)`;
      changed.add(p);
      return p;
    };
    const identify = (p: PersonState) => {
      if (!p.isIdentified) {
        p.isIdentified = true;
        changed.add(p);
      }
    };

    let target = persons.get(personOf.get(u.distinctId) ?? "");
    if (u.merge) {
      const other = persons.get(personOf.get(u.merge.otherId) ?? "");
      if (!target && !other) {
        target = await create(true);
        for (const id of ids) await addId(id, target);
        out.merge = "created";
      } else if (!target) {
        target = other!;
        await addId(u.distinctId, target);
        identify(target);
        out.merge = "added_id";
      } else if (!other) {
        await addId(u.merge.otherId, target);
        identify(target);
        out.merge = "added_id";
      } else if (other.id === target.id) {
        identify(target);
        out.merge = "already_merged";
      } else if (other.isIdentified && u.merge.kind !== "merge_dangerously") {
        // PostHog's rule: an identify or alias never merges two identified persons (that would join two users).
        out.merge = "refused_identified";
      } else {
        // The surviving person keeps its own values where both have one; the merged one fills the gaps. Past the
        // size limit the gaps stay unfilled (the ids still merge): the survivor's own values are kept whole.
        const merged = { ...other.properties, ...target.properties };
        if (Buffer.byteLength(JSON.stringify(merged)) <= this.opts.maxPropertiesBytes) target.properties = merged;
        else out.properties = "too_large";
        if (other.createdAt < target.createdAt) target.createdAt = other.createdAt;
        target.isIdentified = true;
        changed.add(target);
        const moved = await tx<{ distinct_id: string; version: string }[]>`
          UPDATE person_distinct_ids SET person_id = ${target.id}, version = version + 1
          WHERE team_id = ${team} AND person_id = ${other.id} RETURNING distinct_id, version`;
        for (const m of moved) out.distinctIds.push({ teamId: team, distinctId: m.distinct_id, personId: target.id, version: Number(m.version) });
        await tx`DELETE FROM persons WHERE id = ${other.id}`;
        out.persons.push({ ...other, version: other.version + 1, isDeleted: true });
        out.merge = "merged";
      }
    }

    if (u.identifies && target) identify(target);
    if (u.set || u.setOnce || u.unset) {
      // A $set on an id without a person creates one (not identified: an anonymous visitor with properties).
      if (!target) {
        target = await create(u.identifies);
        await addId(u.distinctId, target);
      }
      const next = applyProperties(target.properties, u);
      if (Buffer.byteLength(JSON.stringify(next)) > this.opts.maxPropertiesBytes) {
        out.properties = "too_large";
      } else if (sameJson(next, target.properties)) {
        out.properties = "unchanged";
      } else {
        target.properties = next;
        changed.add(target);
        out.properties = "updated";
      }
    } else if (!target && u.identifies) {
      // `$identify` without a usable $anon_distinct_id still records that this id is an identified user.
      target = await create(true);
      await addId(u.distinctId, target);
    }

    for (const p of changed) {
      if (persons.has(p.id)) {
        p.version += 1;
        await tx`UPDATE persons SET properties = ${tx.json(p.properties as never)}, is_identified = ${p.isIdentified},
          created_at = ${p.createdAt}, version = ${p.version} WHERE id = ${p.id}`;
      } else {
        // Created in this transaction (version 0): write what it ended up with.
        await tx`UPDATE persons SET properties = ${tx.json(p.properties as never)}, is_identified = ${p.isIdentified} WHERE id = ${p.id}`;
      }
      out.persons.push({ ...p });
    }

    // The ClickHouse copy is written after this transaction commits. Should that write fail (or the process die
    // in between), the batch is applied again and finds nothing left to change: so the current state of what an
    // update touches goes out every time, changed or not. ClickHouse keeps the highest version per key, so a
    // row sent twice changes no answer.
    if (target && !changed.has(target) && !out.persons.some((p) => p.id === target!.id)) out.persons.push({ ...target });
    if (target && u.merge && out.merge !== "refused_identified") {
      const current = await tx<{ distinct_id: string; version: string }[]>`
        SELECT distinct_id, version FROM person_distinct_ids WHERE team_id = ${team} AND person_id = ${target.id}`;
      const sent = new Set(out.distinctIds.map((d) => `${d.distinctId}\u0000${d.version}`));
      for (const c of current) {
        if (!sent.has(`${c.distinct_id}\u0000${c.version}`)) out.distinctIds.push({ teamId: team, distinctId: c.distinct_id, personId: target.id, version: Number(c.version) });
      }
    }
    return out;
  }

  /** The person of a distinct_id with all its ids (tests and tools; queries read ClickHouse). */
  async find(teamId: number, distinctId: string): Promise<{ person: PersonState; distinctIds: string[] } | null> {
    const rows = await this.sql<PersonRow[]>`
      SELECT p.id, p.team_id, p.properties, p.is_identified, p.created_at, p.version
      FROM person_distinct_ids d JOIN persons p ON p.id = d.person_id
      WHERE d.team_id = ${teamId} AND d.distinct_id = ${distinctId}`;
    if (!rows[0]) return null;
    const ids = await this.sql<{ distinct_id: string }[]>`
      SELECT distinct_id FROM person_distinct_ids WHERE team_id = ${teamId} AND person_id = ${rows[0].id} ORDER BY distinct_id`;
    return { person: toState(rows[0]), distinctIds: ids.map((r) => r.distinct_id) };
  }
}
