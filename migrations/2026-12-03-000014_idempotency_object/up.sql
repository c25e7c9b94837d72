-- The id of the object a keyed POST creates, chosen when the key is first claimed and kept when
-- a stale claim is taken over: a retry whose first try committed but could not store its answer
-- finds that object by this id instead of creating a second one. NULL for keys stored before.
ALTER TABLE idempotency_keys ADD COLUMN object_id uuid;
