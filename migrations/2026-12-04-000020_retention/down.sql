DROP TABLE retention_progress;
DROP INDEX endpoint_attempt_counts_hour;
DROP INDEX messages_payload_expires;
ALTER TABLE messages DROP COLUMN payload_expires;
ALTER TABLE messages DROP COLUMN expunged;
