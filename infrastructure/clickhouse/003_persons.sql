-- Persons, as queries read them. PostgreSQL holds the authoritative state (apps/consumer/persons, transactions
-- with row locks); the consumer copies every change here with the row's version, and queries take the highest
-- version per key (argMax), so copies written twice or out of order never matter. See docs/persons.md.
--
-- distinct_id -> person, one row per change; the highest version wins. Events are never rewritten: a merge that
-- arrives late re-points the ids and every earlier event follows at query time.
CREATE TABLE IF NOT EXISTS ${DATABASE}.person_distinct_id
(
    team_id     UInt32,
    distinct_id String,
    person_id   String,
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (team_id, distinct_id)
;
-- Person properties; a person merged into another is written once more with is_deleted = 1.
CREATE TABLE IF NOT EXISTS ${DATABASE}.persons
(
    team_id       UInt32,
    id            String,
    properties    String,
    prop_keys     Array(String),
    prop_values   Array(String),
    is_identified UInt8,
    is_deleted    UInt8,
    created_at    DateTime('UTC'),
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (team_id, id)
;
