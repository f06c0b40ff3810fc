CREATE TABLE decisions (
    id TEXT PRIMARY KEY,
    created_by TEXT NOT NULL,
    idempotency_key TEXT,
    task_id TEXT,
    status TEXT NOT NULL,
    deadline_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    resolved_at_ms BIGINT,
    review TEXT,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX decisions_idempotency ON decisions (created_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX decisions_pending_deadline ON decisions (deadline_ms) WHERE status = 'pending_review';
CREATE INDEX decisions_task ON decisions (task_id, id);
CREATE INDEX decisions_status ON decisions (status, id);

CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    task_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX events_task ON events (task_id, seq);

CREATE TABLE policy_versions (
    version TEXT PRIMARY KEY,
    files_json TEXT NOT NULL,
    first_used_at_ms BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);
