DROP FUNCTION octohooks_emit_operational(uuid, text, jsonb);
DROP FUNCTION octohooks_uuid_v7(timestamptz);
DELETE FROM applications WHERE operational;
DROP INDEX applications_operational;
ALTER TABLE applications DROP COLUMN operational;
