-- Backtests: a candidate rule set replayed over a window of stored
-- decisions. The row holds the request, the progress and the result; the
-- work itself is a `backtest` job (the jobs table), so a backtest queued
-- before a crash runs after the restart. Same conventions as 0001: Unix
-- milliseconds (BIGINT), JSON documents as TEXT.
CREATE TABLE backtests (
    id             TEXT PRIMARY KEY,
    subscriber_id  TEXT NOT NULL REFERENCES subscribers (id),
    status         TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    -- What was asked, with the candidate rule set resolved: later edits of a
    -- stored version do not change what a queued backtest replays.
    request        TEXT NOT NULL,
    progress_done  BIGINT NOT NULL DEFAULT 0,
    progress_total BIGINT NOT NULL DEFAULT 0,
    result         TEXT,
    error          TEXT,
    created_at     BIGINT NOT NULL,
    started_at     BIGINT,
    finished_at    BIGINT,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX backtests_by_subscriber ON backtests (subscriber_id, created_at DESC, id DESC);
