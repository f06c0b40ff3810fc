-- One row that every readiness check rewrites: a store is ready only
-- while it can still write, not merely answer reads.
CREATE TABLE readiness (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at TEXT NOT NULL
);
