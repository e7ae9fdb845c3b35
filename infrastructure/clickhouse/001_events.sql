-- Events written by apps/consumer, read by apps/query. Runs on ClickHouse 18.16 (Debian) and current ClickHouse:
-- no LowCardinality, no DateTime64, no JSON type; properties are kept twice, as the raw JSON string and as
-- parallel key/value arrays that filters and breakdowns read without JSON functions.
CREATE DATABASE IF NOT EXISTS ${DATABASE}
;
CREATE TABLE IF NOT EXISTS ${DATABASE}.events
(
    uuid            UUID,
    team_id         UInt32,
    event           String,
    distinct_id     String,
    timestamp       DateTime('UTC'),
    properties      String,
    prop_keys       Array(String),
    prop_values     Array(String),
    ip              String,
    received_at     DateTime('UTC'),
    inserted_at     DateTime('UTC') DEFAULT now(),
    kafka_partition UInt16,
    kafka_offset    UInt64
)
-- ReplacingMergeTree: a row redelivered by Kafka (same uuid, hence same sort key) is collapsed at merge time.
-- Until a merge happens the query builder counts distinct uuids, so duplicates never show in results.
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (team_id, toDate(timestamp), event, cityHash64(distinct_id), uuid)
SETTINGS index_granularity = 8192
;
