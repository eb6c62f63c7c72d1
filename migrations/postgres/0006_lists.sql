-- A subscriber's lists (blocked cards, trusted users, …) and their entries,
-- which rules read as `lists.<name>`. Same conventions as 0001: Unix
-- milliseconds (BIGINT), text values normalized for the list's kind.
CREATE TABLE lists (
    subscriber_id TEXT NOT NULL,
    -- `[a-z0-9_]{1,64}`.
    name TEXT NOT NULL,
    -- `email`, `email_domain`, `ip`, `bin`, `card`, `device`, `user` or `country`.
    kind TEXT NOT NULL,
    description TEXT,
    -- How many entries the list holds (kept with every change).
    entries BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (subscriber_id, name)
);
CREATE TABLE list_entries (
    subscriber_id TEXT NOT NULL,
    list_name TEXT NOT NULL,
    -- Normalized for the kind; a card is `bin6:last4`, never a full number.
    value TEXT NOT NULL,
    reason TEXT,
    -- NULL: never expires.
    expires_at BIGINT,
    -- The actor: `operator`, `api_key:<key id>`, `user:<console user id>`.
    author TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (subscriber_id, list_name, value)
);
-- Bumped by every change to a subscriber's lists, so a process that keeps
-- them in memory knows when to read them again.
CREATE TABLE list_revisions (
    subscriber_id TEXT PRIMARY KEY,
    revision BIGINT NOT NULL
);
