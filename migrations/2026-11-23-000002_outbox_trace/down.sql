DROP INDEX message_destinations_pending;
ALTER TABLE outbox DROP COLUMN traceparent;
