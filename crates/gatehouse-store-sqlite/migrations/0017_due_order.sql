-- The dispatcher claims due deliveries in (next_attempt_at_ms, position)
-- order. An index on the due time alone made every claim sort the whole
-- backlog (a burst leaves tens of thousands of rows due at once), so a
-- claim grew with the backlog; with both columns it reads only the rows
-- it claims.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at_ms, position) WHERE status = 'pending';
