-- The analyst console: its users, their sessions, and the indexes its pages
-- read by. Same conventions as 0001: Unix milliseconds (INTEGER).

-- A subscriber's console user. Emails are unique across subscribers: the
-- sign-in form asks for an email and a password, nothing else.
CREATE TABLE console_users (
    id            TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id),
    email         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('analyst', 'admin')),
    status        TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    -- Argon2id, in the PHC string form (algorithm, parameters, salt, hash).
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_sign_in_at INTEGER
);
CREATE INDEX console_users_subscriber ON console_users (subscriber_id, created_at);

-- A signed-in browser. Only the SHA-256 of the cookie's token is stored; a
-- row without user is the operator (admin token), whose subscriber is the
-- one picked to view (none yet: NULL).
CREATE TABLE console_sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       TEXT REFERENCES console_users (id),
    subscriber_id TEXT,
    role          TEXT NOT NULL CHECK (role IN ('analyst', 'admin', 'operator')),
    csrf_token    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- The review queue (review decisions without a label, oldest first) and the
-- decision search's action filter read by these. The queue's index is not
-- partial (WHERE label IS NULL): SQLite's planner then preferred the action
-- index and read every review row to check its label.
CREATE INDEX decisions_queue ON decisions (subscriber_id, action, label, created_at, id);
CREATE INDEX decisions_action_time ON decisions (subscriber_id, action, created_at, id);
-- A customer's decisions, newest first.
CREATE INDEX decisions_user_time ON decisions (subscriber_id, user_id, created_at, id);
-- The overview counts actions per hour from the index alone.
CREATE INDEX decisions_overview ON decisions (subscriber_id, created_at, action, duration_us);
-- The decision search by card or device finds the customers seen with it
-- (covering: SQLite's planner otherwise prefers the primary key's index).
CREATE INDEX customer_cards_by_card ON customer_cards (subscriber_id, bin, last4, user_id);
CREATE INDEX customer_devices_by_device ON customer_devices (subscriber_id, visitor_id, user_id);
