-- Projects (PostHog calls them teams). `token` is public (capture); the secret query key is shown once at
-- creation and only its SHA-256 is stored.
CREATE TABLE IF NOT EXISTS projects (
    id               SERIAL PRIMARY KEY,
    name             TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    token            TEXT        NOT NULL UNIQUE,
    secret_key_hash  TEXT        NOT NULL UNIQUE,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
