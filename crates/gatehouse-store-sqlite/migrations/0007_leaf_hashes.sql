-- The Merkle hashes an append stores (one to about two per leaf) now live
-- in the appended leaf's row, as their 32-byte values concatenated in
-- storage-index order: one insert per entry instead of about three. Leaves
-- appended before this migration keep theirs in log_hashes, which is read
-- only for them.
ALTER TABLE log_entries ADD COLUMN hashes BLOB;
