-- Rule-set versions have a life: a draft is stored without acting, one
-- version is live (it decides), at most one is the shadow (evaluated beside
-- the live one, never acting), and a version that stopped being live is
-- retired. Same conventions as 0001: Unix milliseconds, JSON as TEXT.
ALTER TABLE rule_sets ADD COLUMN status TEXT NOT NULL DEFAULT 'retired'
    CHECK (status IN ('draft', 'live', 'shadow', 'retired'));
-- Who stored the version: `operator`, `user:<id>` (see audit_log.actor).
ALTER TABLE rule_sets ADD COLUMN author TEXT NOT NULL DEFAULT 'operator';
ALTER TABLE rule_sets ADD COLUMN note TEXT;
-- When the version last became live; NULL for a version never published.
ALTER TABLE rule_sets ADD COLUMN published_at INTEGER;

-- Every version stored before versions had a status was published by its
-- PUT; the highest of each subscriber is the one that decides.
UPDATE rule_sets SET published_at = created_at;
UPDATE rule_sets SET status = 'live'
    WHERE version = (SELECT MAX(r.version) FROM rule_sets r
                     WHERE r.subscriber_id = rule_sets.subscriber_id);

CREATE UNIQUE INDEX rule_sets_live ON rule_sets (subscriber_id) WHERE status = 'live';
CREATE UNIQUE INDEX rule_sets_shadow ON rule_sets (subscriber_id) WHERE status = 'shadow';

-- The shadow version's outcome on this decision (JSON: version, risk_score,
-- risk_level, action, rule_hits); NULL when no shadow ran.
ALTER TABLE decisions ADD COLUMN shadow TEXT;
