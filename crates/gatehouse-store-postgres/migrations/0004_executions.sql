-- Action Execution Receipts and Outcome Records, each stored whole (body)
-- with its hash, and the reason a decision was flagged for owner review.
CREATE TABLE executions (
    id TEXT PRIMARY KEY,
    decision_id TEXT NOT NULL,
    body TEXT NOT NULL,
    log_index BIGINT NOT NULL
);
CREATE INDEX executions_decision ON executions (decision_id, id);

CREATE TABLE outcomes (
    id TEXT PRIMARY KEY,
    decision_id TEXT NOT NULL,
    body TEXT NOT NULL,
    log_index BIGINT NOT NULL
);
CREATE INDEX outcomes_decision ON outcomes (decision_id, id);

ALTER TABLE decisions ADD COLUMN flag_reason TEXT;
