-- Persons and the distinct_ids that belong to them: the authoritative state the consumer changes in
-- transactions with row locks (apps/consumer/persons/person-store.ts) and copies to ClickHouse with each row's
-- version. See docs/persons.md.
CREATE TABLE IF NOT EXISTS persons (
    id             UUID        PRIMARY KEY,
    team_id        BIGINT      NOT NULL,
    properties     JSONB       NOT NULL DEFAULT '{}',
    is_identified  BOOLEAN     NOT NULL DEFAULT false,
    created_at     TIMESTAMPTZ NOT NULL,
    version        BIGINT      NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS person_distinct_ids (
    team_id      BIGINT NOT NULL,
    distinct_id  TEXT   NOT NULL,
    person_id    UUID   NOT NULL REFERENCES persons (id),
    version      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (team_id, distinct_id)
);
CREATE INDEX IF NOT EXISTS person_distinct_ids_person ON person_distinct_ids (person_id);
