-- The request that holds a key: only it may store the response or free the key.
ALTER TABLE idempotency_keys ADD COLUMN owner uuid;
