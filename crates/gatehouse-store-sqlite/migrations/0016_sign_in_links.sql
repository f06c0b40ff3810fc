-- One-time console sign-in links sent by email: the SHA-256 of the link's
-- token, never the token; used at most once, before it expires.
CREATE TABLE sign_in_links (
    id_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    decision_id TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms INTEGER
);
CREATE INDEX sign_in_links_expiry ON sign_in_links (expires_at_ms);
