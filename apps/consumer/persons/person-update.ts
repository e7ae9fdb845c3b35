/**
 * What an event asks of person state, read from the event alone (pure). PostHog's semantics
 * (posthog.com/docs/product-analytics/identify):
 *   `$identify`          merge `properties.$anon_distinct_id` into the person of `distinct_id`;
 *   `$create_alias`      merge `properties.alias` into the person of `distinct_id`;
 *   `$merge_dangerously` the same as an alias, also when both persons are already identified;
 *   `$set` / `$set_once` (capture carries their union of top level and `properties`), `properties.$unset`.
 * An event with none of these returns null: it never touches person state.
 */
import type { CapturedEvent } from "../../../lib/events/captured-event.ts";

export type MergeKind = "identify" | "alias" | "merge_dangerously";

/** Why an event's merge is not attempted (the event and its property updates still are). */
export type MergeSkip = "no_other_id" | "invalid_other_id" | "self";

export interface PersonUpdate {
  teamId: number;
  distinctId: string;
  /** Event time (ms): a person created by this update starts then. */
  at: number;
  merge?: { kind: MergeKind; otherId: string };
  mergeSkipped?: MergeSkip;
  /** `$identify` marks the person identified, with or without a merge. */
  identifies: boolean;
  set?: Record<string, unknown>;
  setOnce?: Record<string, unknown>;
  unset?: string[];
}

const MERGE_EVENTS: Record<string, { kind: MergeKind; key: string }> = {
  $identify: { kind: "identify", key: "$anon_distinct_id" },
  $create_alias: { kind: "alias", key: "alias" },
  $merge_dangerously: { kind: "merge_dangerously", key: "alias" },
};

/** Same bounds as a distinct_id on the Kafka event. */
const MAX_ID = 200;

const nonEmpty = (o: Record<string, unknown> | undefined) => (o && Object.keys(o).length > 0 ? o : undefined);

export function personUpdateOf(e: CapturedEvent): PersonUpdate | null {
  const spec = MERGE_EVENTS[e.event];
  const set = nonEmpty(e.$set);
  const setOnce = nonEmpty(e.$set_once);
  const rawUnset = e.properties.$unset;
  const unset = Array.isArray(rawUnset) ? rawUnset.filter((k): k is string => typeof k === "string") : undefined;
  if (!spec && !set && !setOnce && !unset?.length) return null;

  const u: PersonUpdate = { teamId: e.team_id, distinctId: e.distinct_id, at: Date.parse(e.timestamp), identifies: e.event === "$identify" };
  if (set) u.set = set;
  if (setOnce) u.setOnce = setOnce;
  if (unset?.length) u.unset = unset;
  if (spec) {
    const other = e.properties[spec.key];
    if (other === undefined || other === null || other === "") u.mergeSkipped = "no_other_id";
    // Numbers are ids too (PostHog accepts them); anything else cannot name a distinct_id.
    else if ((typeof other !== "string" && typeof other !== "number") || String(other).length > MAX_ID) u.mergeSkipped = "invalid_other_id";
    else if (String(other) === e.distinct_id) u.mergeSkipped = "self";
    else u.merge = { kind: spec.kind, otherId: String(other) };
  }
  return u;
}
