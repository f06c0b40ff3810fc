-- Retired approval-token keys. The JWKS keeps a retired key while any
-- token it signed (approval_tokens.kid) has not expired.
CREATE TABLE token_keys (
    kid TEXT PRIMARY KEY,
    jwk TEXT NOT NULL,
    retired_at_ms BIGINT NOT NULL
);
CREATE INDEX approval_tokens_kid ON approval_tokens (kid, expires_at_ms);
