-- The transparency log: leaves in order, the stored hashes of the Merkle
-- tree (tlog layout), and one signed checkpoint per committed batch.
CREATE TABLE log_entries (
    idx INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    ref_id TEXT NOT NULL,
    leaf BLOB NOT NULL
);
CREATE INDEX log_entries_ref ON log_entries (ref_id, idx);

CREATE TABLE log_hashes (
    idx INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
);

CREATE TABLE checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

ALTER TABLE decisions ADD COLUMN log_index INTEGER;
