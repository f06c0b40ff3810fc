-- Private hooks for no-code tools (gatehouse_store::hooks). The secret is
-- kept, not hashed: a tool may sign its bodies with it (HMAC-SHA256).
CREATE TABLE hooks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    workflow TEXT NOT NULL,
    actions TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
);
