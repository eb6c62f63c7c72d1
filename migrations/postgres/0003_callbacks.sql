-- Signed decision callbacks and webhook secret rotation. Same conventions as
-- 0001: Unix milliseconds (BIGINT), JSON documents as TEXT.

-- What a decision's callback sends, fixed by its first attempt so that every
-- retry sends the same body.
ALTER TABLE decisions ADD COLUMN final_input TEXT;
ALTER TABLE decisions ADD COLUMN final_result TEXT;
ALTER TABLE decisions ADD COLUMN final_at BIGINT;

-- The secret replaced by the last rotation, still valid until it expires.
ALTER TABLE subscribers ADD COLUMN previous_webhook_secret_sealed TEXT;
ALTER TABLE subscribers ADD COLUMN previous_secret_expires_at BIGINT;

-- Every delivery attempt of a decision's callback.
CREATE TABLE callback_attempts (
    decision_id TEXT NOT NULL REFERENCES decisions (id),
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    status_code BIGINT,
    error       TEXT,
    duration_ms BIGINT NOT NULL,
    webhook_id  TEXT NOT NULL,
    PRIMARY KEY (decision_id, attempt)
);

-- The age of the oldest live job of a kind (a gauge), without scanning the
-- finished ones.
CREATE INDEX jobs_live_age ON jobs (kind, created_at) WHERE state IN ('pending', 'running');
