-- Timestamps are Unix milliseconds (BIGINT) and JSON documents are TEXT, so the
-- SQLite and PostgreSQL schemas answer the same queries with the same types.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE subscribers (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    webhook_secret_sealed TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

CREATE TABLE api_keys (
    key_id        TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id),
    name          TEXT,
    key_hash      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_subscriber ON api_keys (subscriber_id);

CREATE TABLE provider_credentials (
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id),
    provider      TEXT NOT NULL,
    sealed        TEXT NOT NULL,
    settings      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (subscriber_id, provider)
);

CREATE TABLE rule_sets (
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id),
    version       BIGINT NOT NULL,
    body          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (subscriber_id, version)
);

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    subscriber_id    TEXT NOT NULL REFERENCES subscribers (id),
    dedupe_key       TEXT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    run_at           BIGINT NOT NULL,
    lease_expires_at BIGINT,
    result           TEXT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    finished_at      BIGINT
);
-- At most one live job per (subscriber, kind, key): a second ingest of the same
-- request id while the first is pending finds this index and reports `in_flight`.
CREATE UNIQUE INDEX jobs_live ON jobs (subscriber_id, kind, dedupe_key)
    WHERE state IN ('pending', 'running');
CREATE INDEX jobs_lookup ON jobs (subscriber_id, kind, dedupe_key, created_at);
CREATE INDEX jobs_due ON jobs (state, run_at);

CREATE TABLE decisions (
    id              TEXT PRIMARY KEY,
    subscriber_id   TEXT NOT NULL REFERENCES subscribers (id),
    request_id      TEXT NOT NULL,
    idempotency_key TEXT,
    request_hash    TEXT NOT NULL,
    input           TEXT NOT NULL,
    result          TEXT NOT NULL,
    risk_score      DOUBLE PRECISION NOT NULL,
    risk_level      TEXT NOT NULL,
    action          TEXT NOT NULL,
    rules_version   BIGINT NOT NULL,
    callback_url    TEXT,
    label           TEXT,
    labeled_at      BIGINT,
    created_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX decisions_idempotency ON decisions (subscriber_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX decisions_request ON decisions (subscriber_id, request_id);
