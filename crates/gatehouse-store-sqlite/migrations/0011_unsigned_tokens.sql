-- Approval tokens are kept without their signature (header.claims): a copy
-- of the database must not hold a token anyone can present. The server
-- signs the stored text again when the agent reads its token. Tokens
-- stored whole by earlier versions lose their third segment here.
UPDATE approval_tokens
SET token = substr(token, 1,
    instr(token, '.') + instr(substr(token, instr(token, '.') + 1), '.') - 1)
WHERE token LIKE '%.%.%';
