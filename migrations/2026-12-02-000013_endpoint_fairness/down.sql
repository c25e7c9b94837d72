DROP FUNCTION octohooks_take_token(uuid, integer);
DROP FUNCTION octohooks_grant_slots(uuid, uuid, integer, integer, integer, integer);
DROP TABLE endpoint_rate_buckets;
DROP TABLE endpoint_slot_grants;
ALTER TABLE outbox DROP COLUMN deferrals;
ALTER TABLE endpoints DROP COLUMN rate_limit;
