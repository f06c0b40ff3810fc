-- Approval tokens are kept without their signature (header.claims): a copy
-- of the database must not hold a token anyone can present. The server
-- signs the stored text again when the agent reads its token. Tokens
-- stored whole by earlier versions lose their third segment here.
UPDATE approval_tokens
SET token = split_part(token, '.', 1) || '.' || split_part(token, '.', 2)
WHERE token LIKE '%.%.%';
