-- Destinations and attempts no longer check their message by foreign key. The check ran a query
-- and took a KEY SHARE lock on the message's row for every destination stored and every attempt
-- recorded (a fan-out to 20 endpoints locked one message row 20 times over, from as many
-- dispatcher transactions). Nothing is lost by it:
--   * a destination is only ever stored with its message, in the same statement, or by a replay
--     that locks the message first;
--   * a scheduled attempt is stored only where its destination's row was updated in the same
--     statement, so a message deleted meanwhile leaves no attempt (see below);
--   * a manual attempt locks its message first (KEY SHARE), as the foreign key did.
-- Deleting messages still deletes their destinations and attempts, by the statement trigger
-- below, once per statement instead of once per message.
--
-- The trigger removes destinations before attempts, in two statements. A dispatcher recording
-- an attempt while the message goes holds its destination's row: the first delete waits for it
-- to commit, and the second, planned afresh after that, sees the attempt it stored.
CREATE FUNCTION octohooks_forget_deliveries() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  DELETE FROM message_destinations d USING removed r WHERE d.message_id = r.id;
  DELETE FROM attempts a USING removed r WHERE a.message_id = r.id;
  RETURN NULL;
END
$$;

CREATE TRIGGER messages_forget_deliveries AFTER DELETE ON messages
  REFERENCING OLD TABLE AS removed
  FOR EACH STATEMENT EXECUTE FUNCTION octohooks_forget_deliveries();

ALTER TABLE message_destinations DROP CONSTRAINT message_destinations_message_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT attempts_message_id_fkey;
