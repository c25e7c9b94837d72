-- The SHA-256 of the request body a key was first used with: the same key with another body is
-- refused (409) instead of replaying an answer to a different request. NULL for keys stored
-- before, which are compared by path only until they expire.
ALTER TABLE idempotency_keys ADD COLUMN request_fingerprint bytea;
