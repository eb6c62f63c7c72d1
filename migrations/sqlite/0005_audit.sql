-- The audit log: one row per change an operator, an API key or a console
-- user made, written in the same transaction as the change. Same conventions
-- as 0001: Unix milliseconds (INTEGER), JSON as TEXT.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    -- `operator`, `api_key:<key id>` or `user:<console user id>`.
    actor TEXT NOT NULL,
    -- What was done, e.g. `rules.publish`, `list.entry.add`, `key.revoke`.
    action TEXT NOT NULL,
    -- What it was done to, e.g. `rules/3`, `lists/blocked_cards`.
    target TEXT NOT NULL,
    -- A JSON object summarizing the change; never a secret.
    summary TEXT NOT NULL
);
CREATE INDEX audit_log_by_subscriber ON audit_log (subscriber_id, at DESC, id DESC);
