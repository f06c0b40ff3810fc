-- The outbox (gatehouse_store::outbox): the fan-out's cursor over the log,
-- the deliveries it owes, each attempt, and what channels remember.

-- One row. It starts at the log's size when this migration runs: events
-- logged before notifications existed are not owed to anyone.
CREATE TABLE outbox_cursor (
    name TEXT PRIMARY KEY,
    next_index BIGINT NOT NULL
);
INSERT INTO outbox_cursor (name, next_index)
SELECT 'deliveries', COUNT(*) FROM log_entries;

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    log_index BIGINT NOT NULL,
    position BIGINT NOT NULL,
    decision_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT NOT NULL,
    age_from_ms BIGINT NOT NULL,
    claimed_until_ms BIGINT NOT NULL DEFAULT 0,
    last_attempt_at_ms BIGINT,
    last_status_code BIGINT,
    last_error TEXT,
    delivered_at_ms BIGINT,
    -- A fan-out that runs twice over the same entries stores nothing twice.
    UNIQUE (position, channel, target)
);
-- Due deliveries, for the dispatcher's claim.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at_ms) WHERE status = 'pending';
-- Earlier pending deliveries to the same target about the same decision.
CREATE INDEX deliveries_stream ON deliveries (decision_id, channel, target, position)
    WHERE status = 'pending';
CREATE INDEX deliveries_by_status ON deliveries (status, id);
CREATE INDEX deliveries_by_decision ON deliveries (decision_id, id);

CREATE TABLE delivery_attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    status_code BIGINT,
    error TEXT,
    PRIMARY KEY (delivery_id, attempt, at_ms)
);

-- What a channel needs later about a decision, e.g. a Slack message's ts.
CREATE TABLE notification_refs (
    decision_id TEXT NOT NULL,
    ref_key TEXT NOT NULL,
    ref_value TEXT NOT NULL,
    PRIMARY KEY (decision_id, ref_key)
);

-- Webhook subscriptions made through the admin API.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
