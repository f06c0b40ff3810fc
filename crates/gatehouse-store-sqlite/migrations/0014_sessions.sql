-- Console sessions: the SHA-256 of the browser's token, never the token.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    csrf TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_seen_at_ms INTEGER NOT NULL
);
CREATE INDEX console_sessions_last_seen ON console_sessions (last_seen_at_ms);
