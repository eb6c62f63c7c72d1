-- Asymmetric (Ed25519, Standard Webhooks `v1a`) callback signatures beside
-- the HMAC `v1` ones. Same conventions as 0001: Unix milliseconds (INTEGER).

-- The scheme a subscriber's callbacks are signed with; every existing
-- subscriber keeps `v1`.
ALTER TABLE subscribers ADD COLUMN signing_scheme TEXT NOT NULL DEFAULT 'v1'
    CHECK (signing_scheme IN ('v1', 'v1a'));
-- The Ed25519 key pair, made at the first switch to `v1a`: the private key
-- sealed like the webhook secret, the public key in clear (it is no secret).
ALTER TABLE subscribers ADD COLUMN signing_key_sealed TEXT;
ALTER TABLE subscribers ADD COLUMN signing_public_key TEXT;
-- The key pair replaced by the last key rotation, still signing until it
-- expires.
ALTER TABLE subscribers ADD COLUMN previous_signing_key_sealed TEXT;
ALTER TABLE subscribers ADD COLUMN previous_signing_key_expires_at INTEGER;
-- Until when the scheme in force before the last change still signs too.
ALTER TABLE subscribers ADD COLUMN previous_scheme_expires_at INTEGER;
