-- The key that created a key through the API: its principal for
-- separation of duties (NULL for keys made with the CLI).
ALTER TABLE api_keys ADD COLUMN minted_by TEXT;
