-- One approval token per decision, issued once; single use is enforced by
-- the primary key on the token id.
CREATE TABLE approval_tokens (
    decision_id TEXT PRIMARY KEY,
    jti TEXT NOT NULL UNIQUE,
    kid TEXT NOT NULL,
    token TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE token_redemptions (
    jti TEXT PRIMARY KEY,
    decision_id TEXT NOT NULL,
    redeemed_by TEXT NOT NULL,
    redeemed_at_ms BIGINT NOT NULL,
    log_index BIGINT NOT NULL
);
