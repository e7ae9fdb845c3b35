/**
 * Person processing for the ingest loop: `collect` picks the person updates out of accepted events (in Kafka
 * order), `apply` runs them in that order against PostgreSQL, then copies what changed to ClickHouse. The loop
 * calls `apply` before it inserts the batch's events and retries it like an insert (transient failures of either
 * store); every step is idempotent, so a retry or a redelivery re-applies harmlessly. Bad input (a merge with no
 * other id, an id merged into itself, two identified persons, properties over the size limit) is an outcome,
 * counted in `consumer_person_updates_total{kind,outcome}`, never an error: the event is stored all the same.
 */
import { Counter, type Registry } from "prom-client";
import type { CapturedEvent } from "../../../lib/events/captured-event.ts";
import type { Logger } from "../../../lib/log/logger.ts";
import type { PersonRowSink } from "./person-rows.ts";
import type { DistinctIdState, PersonState, PersonStore } from "./person-store.ts";
import { personUpdateOf, type PersonUpdate } from "./person-update.ts";

export function personMetrics(registry: Registry) {
  return {
    updates: new Counter({
      name: "consumer_person_updates_total",
      help: "Person updates by kind (merge, properties, update) and outcome (rejected: PostgreSQL refused the values; merged, added_id, created, already_merged, refused_identified, no_other_id, invalid_other_id, self; updated, unchanged, too_large)",
      labelNames: ["kind", "outcome"],
      registers: [registry],
    }),
  };
}

function isDataException(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("22");
}

export class Persons {
  private readonly metrics: ReturnType<typeof personMetrics>;

  constructor(
    private readonly store: Pick<PersonStore, "apply">,
    private readonly rows: PersonRowSink,
    registry: Registry,
    private readonly log: Logger,
  ) {
    this.metrics = personMetrics(registry);
  }

  /** The event's person update, if it has one. */
  collect(e: CapturedEvent): PersonUpdate | null {
    return personUpdateOf(e);
  }

  async apply(updates: readonly PersonUpdate[]): Promise<void> {
    const persons: PersonState[] = [];
    const ids: DistinctIdState[] = [];
    const outcomes: { kind: string; outcome: string }[] = [];
    for (const u of updates) {
      let r;
      try {
        r = await this.store.apply(u);
      } catch (err) {
        // A data exception (SQLSTATE class 22: a value PostgreSQL cannot hold) is this update's own fault and fails
        // the same way on every retry: skip it (its transaction rolled back whole), count it, go on. Anything else
        // (connection, lock timeout) propagates and the batch is retried.
        if (!isDataException(err)) throw err;
        outcomes.push({ kind: "update", outcome: "rejected" });
        this.log.warn({ team: u.teamId, distinctId: u.distinctId, err: String(err) }, "person update rejected by PostgreSQL");
        continue;
      }
      persons.push(...r.persons);
      ids.push(...r.distinctIds);
      if (r.merge) outcomes.push({ kind: "merge", outcome: r.merge });
      if (r.properties) outcomes.push({ kind: "properties", outcome: r.properties });
      if (r.merge === "refused_identified" || r.properties === "too_large") {
        this.log.info({ team: u.teamId, distinctId: u.distinctId, merge: r.merge, properties: r.properties }, "person update refused");
      }
    }
    await this.rows.write(persons, ids);
    // Counted once the batch's updates are stored, so a retried batch does not count twice.
    for (const o of outcomes) this.metrics.updates.inc(o);
  }
}
