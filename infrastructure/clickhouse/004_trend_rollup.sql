-- Trend rollup (apps/query/trend-rollup.ts). Exact event totals of trends without scanning every event.
-- Counting is by distinct uuid (a redelivered duplicate must not count), and no compact aggregate that
-- ClickHouse can merge counts distinct values exactly: uniqExactState(uuid) per slot was measured slower to read
-- on 18.16 than the raw scan (bench/results/trend-rollup-*.json). So the rollup is in two parts:
--   events_slot_inserts  rows INSERTED per (team, event, 15-minute UTC slot), kept by ClickHouse itself through
--                        a materialized view. Duplicates count here too: it is a change detector, never a result.
--   events_slot_counts   exact distinct-uuid counts per slot, computed from `events` by the query app, stored
--                        with the `inserted` value read BEFORE they were computed. A count is used only while
--                        `inserted` is unchanged, i.e. while no row (late event or duplicate) reached the slot.
-- 15-minute slots: every time zone in use has an offset that is a multiple of 15 minutes, so local hours, days,
-- weeks and months are unions of whole slots (the query app checks each range and falls back otherwise).
CREATE TABLE IF NOT EXISTS ${DATABASE}.events_slot_inserts
(
    team_id  UInt32,
    event    String,
    slot     DateTime('UTC'),
    inserted UInt64
)
ENGINE = SummingMergeTree(inserted)
PARTITION BY toYYYYMM(slot)
ORDER BY (team_id, event, slot)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${DATABASE}.events_slot_inserts_mv TO ${DATABASE}.events_slot_inserts
AS SELECT team_id, event, toDateTime(intDiv(toUInt32(timestamp), 900) * 900, 'UTC') AS slot, count() AS inserted
FROM ${DATABASE}.events
GROUP BY team_id, event, slot
;
-- ReplacingMergeTree(inserted): a newer verification of a slot replaces the older one at merge time; queries
-- take argMax(events, inserted) so they never depend on merges having happened.
CREATE TABLE IF NOT EXISTS ${DATABASE}.events_slot_counts
(
    team_id  UInt32,
    event    String,
    slot     DateTime('UTC'),
    inserted UInt64,
    events   UInt64
)
ENGINE = ReplacingMergeTree(inserted)
PARTITION BY toYYYYMM(slot)
ORDER BY (team_id, event, slot)
;
-- Backfill: the view only sees inserts made after it exists. Rows already in `events` are counted once here;
-- a row inserted while this runs may be counted twice, which is harmless (a change detector, never a result).
-- The query app uses the rollup only once the marker row below exists.
CREATE TABLE IF NOT EXISTS ${DATABASE}.rollup_backfills
(
    name        String,
    finished_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(finished_at)
ORDER BY name
;
-- skip-if: SELECT count() FROM ${DATABASE}.rollup_backfills WHERE name = 'events_slot_inserts'
INSERT INTO ${DATABASE}.events_slot_inserts
SELECT team_id, event, toDateTime(intDiv(toUInt32(timestamp), 900) * 900, 'UTC') AS slot, count() AS inserted
FROM ${DATABASE}.events
GROUP BY team_id, event, slot
;
-- skip-if: SELECT count() FROM ${DATABASE}.rollup_backfills WHERE name = 'events_slot_inserts'
INSERT INTO ${DATABASE}.rollup_backfills (name) VALUES ('events_slot_inserts')
;
