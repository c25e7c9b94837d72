ALTER TABLE idempotency_keys DROP COLUMN object_id;
