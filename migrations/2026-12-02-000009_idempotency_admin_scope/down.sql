DELETE FROM idempotency_keys k
    WHERE NOT EXISTS (SELECT 1 FROM environments e WHERE e.id = k.environment_id);
COMMENT ON COLUMN idempotency_keys.environment_id IS NULL;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_environment_id_fkey
    FOREIGN KEY (environment_id) REFERENCES environments (id) ON DELETE CASCADE;
