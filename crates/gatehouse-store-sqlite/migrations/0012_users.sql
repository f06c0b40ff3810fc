-- People who review, audit or administer, and the groups that route
-- reviews to them. A password is kept only as an Argon2id PHC string.
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    email TEXT,
    password_hash TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    disabled_at_ms INTEGER
);
CREATE TABLE user_groups (
    user_name TEXT NOT NULL REFERENCES users (name),
    group_name TEXT NOT NULL,
    PRIMARY KEY (user_name, group_name)
);
CREATE INDEX user_groups_by_group ON user_groups (group_name);
-- An identity another system knows the person by (an OIDC subject, a
-- Slack user id), so sign-in and chat approvals map to the same user.
CREATE TABLE user_identities (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_name TEXT NOT NULL REFERENCES users (name),
    PRIMARY KEY (provider, subject)
);
-- The person an API key belongs to (NULL: the key is its own identity).
ALTER TABLE api_keys ADD COLUMN user_name TEXT REFERENCES users (name);
