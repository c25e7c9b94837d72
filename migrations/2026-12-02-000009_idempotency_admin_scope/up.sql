-- Admin requests (creating environments and API keys) honour Idempotency-Key too. They belong to
-- no environment, so their keys are kept under the nil UUID, which no environment has: the
-- column becomes a scope, no longer a foreign key. Deleting an environment deletes its keys.
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_environment_id_fkey;
COMMENT ON COLUMN idempotency_keys.environment_id IS
    'The environment of the request, or the nil UUID for admin requests';
