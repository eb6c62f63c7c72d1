-- Scoring decisions and end-customer profiles. Same conventions as 0001:
-- Unix milliseconds (INTEGER), JSON documents as TEXT.

ALTER TABLE decisions ADD COLUMN user_id TEXT;
ALTER TABLE decisions ADD COLUMN duration_us INTEGER NOT NULL DEFAULT 0;
CREATE INDEX decisions_subscriber_time ON decisions (subscriber_id, created_at);
-- Keyset paging over every subscriber's decisions at start-up (velocity rebuild).
CREATE INDEX decisions_time ON decisions (created_at, id);

CREATE TABLE customers (
    subscriber_id     TEXT NOT NULL REFERENCES subscribers (id),
    user_id           TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'normal'
                      CHECK (status IN ('normal', 'trusted', 'blocked')),
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    decisions_allow   INTEGER NOT NULL DEFAULT 0,
    decisions_review  INTEGER NOT NULL DEFAULT 0,
    decisions_block   INTEGER NOT NULL DEFAULT 0,
    amount_count      INTEGER NOT NULL DEFAULT 0,
    amount_total      REAL NOT NULL DEFAULT 0,
    amount_max        REAL,
    fraud_labels      INTEGER NOT NULL DEFAULT 0,
    status_updated_at INTEGER,
    PRIMARY KEY (subscriber_id, user_id)
);

CREATE TABLE customer_devices (
    subscriber_id TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    visitor_id    TEXT NOT NULL,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    PRIMARY KEY (subscriber_id, user_id, visitor_id),
    FOREIGN KEY (subscriber_id, user_id) REFERENCES customers (subscriber_id, user_id)
);
CREATE INDEX customer_devices_recent ON customer_devices (subscriber_id, user_id, last_seen);

CREATE TABLE customer_cards (
    subscriber_id TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    bin           TEXT NOT NULL,
    last4         TEXT NOT NULL,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    PRIMARY KEY (subscriber_id, user_id, bin, last4),
    FOREIGN KEY (subscriber_id, user_id) REFERENCES customers (subscriber_id, user_id)
);
CREATE INDEX customer_cards_recent ON customer_cards (subscriber_id, user_id, last_seen);
