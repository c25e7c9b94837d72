LOCK TABLE messages, message_destinations, attempts IN SHARE ROW EXCLUSIVE MODE;
DELETE FROM message_destinations d WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = d.message_id);
DELETE FROM attempts a WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = a.message_id);
ALTER TABLE message_destinations ADD CONSTRAINT message_destinations_message_id_fkey
    FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE;
ALTER TABLE attempts ADD CONSTRAINT attempts_message_id_fkey
    FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE;
DROP TRIGGER messages_forget_all_deliveries ON messages;
DROP FUNCTION octohooks_forget_all_deliveries();
DROP TRIGGER messages_forget_deliveries ON messages;
DROP FUNCTION octohooks_forget_deliveries();
