-- Every review of a decision, as JSON (a decision may need several
-- approvals); `review` keeps the one that resolved it.
ALTER TABLE decisions ADD COLUMN reviews TEXT;
-- When the sweeper must next escalate a pending decision (Unix ms).
ALTER TABLE decisions ADD COLUMN escalate_at_ms BIGINT;
CREATE INDEX decisions_pending_escalation ON decisions (escalate_at_ms)
    WHERE status = 'pending_review' AND escalate_at_ms IS NOT NULL;
-- The console's queue: pending requests by deadline, paged by (deadline, id).
CREATE INDEX decisions_pending_queue ON decisions (deadline_ms, id)
    WHERE status = 'pending_review';
