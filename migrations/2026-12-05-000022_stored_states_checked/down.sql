ALTER TABLE outbox DROP CONSTRAINT outbox_trigger_type_known;
ALTER TABLE attempts DROP CONSTRAINT attempts_trigger_type_known;
ALTER TABLE attempts DROP CONSTRAINT attempts_status_known;
ALTER TABLE message_destinations DROP CONSTRAINT message_destinations_status_known;
