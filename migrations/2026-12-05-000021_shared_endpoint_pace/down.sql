DROP FUNCTION octohooks_grant_slots(uuid, uuid, integer, integer, integer, integer, integer);
ALTER TABLE endpoint_slot_grants DROP COLUMN pace_ms;
