-- The JWKS keeps a retired key while any token it signed is unexpired. That
-- question used an index on every token's (kid, expires_at_ms); one row per
-- key holding the latest expiry of the tokens it signed answers it as well,
-- and costs an update of a one-page table per token instead of an index
-- entry.
CREATE TABLE token_key_expiry (
    kid TEXT PRIMARY KEY,
    last_expires_at_ms INTEGER NOT NULL
);
INSERT INTO token_key_expiry (kid, last_expires_at_ms)
    SELECT kid, MAX(expires_at_ms) FROM approval_tokens GROUP BY kid;
DROP INDEX approval_tokens_kid;
