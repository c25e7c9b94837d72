DELETE FROM attempts a WHERE NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.id = a.endpoint_id);
DELETE FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.id = o.endpoint_id)
    OR NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = o.message_id);
ALTER TABLE attempts ADD CONSTRAINT attempts_endpoint_id_fkey
    FOREIGN KEY (endpoint_id) REFERENCES endpoints (id) ON DELETE CASCADE;
ALTER TABLE outbox ADD CONSTRAINT outbox_endpoint_id_fkey
    FOREIGN KEY (endpoint_id) REFERENCES endpoints (id) ON DELETE CASCADE;
ALTER TABLE outbox ADD CONSTRAINT outbox_message_id_fkey
    FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE;
