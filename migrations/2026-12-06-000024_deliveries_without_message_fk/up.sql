-- Destinations and attempts no longer check their message by foreign key. The check ran a query
-- and took a KEY SHARE lock on the message's row for every destination stored and every attempt
-- recorded (a fan-out to 20 endpoints locked one message row 20 times over, from as many
-- dispatcher transactions). Nothing is lost by it:
--   * a destination is only ever stored in the transaction that stores its message (acceptance,
--     send-example, operational events), or after locking the message KEY SHARE (replay, a
--     manual attempt);
--   * a scheduled attempt is stored only where its destination's row was updated in the same
--     statement, so a message deleted meanwhile leaves no attempt (see below);
--   * a manual attempt locks its message first (KEY SHARE), as the foreign key did.
-- Deleting messages still deletes their destinations and attempts, by the statement trigger
-- below, once per statement instead of once per message; truncating them empties both tables.
--
-- The trigger removes destinations before attempts, in two statements, each with a snapshot of
-- its own (READ COMMITTED). A dispatcher recording an attempt while the message goes holds its
-- destination's row: the first delete waits for it to commit, and the second, whose snapshot is
-- taken after that, sees the attempt it stored. Both find rows by key whatever the number of
-- messages deleted: plpgsql keeps a statement's plan for the session, and a plan made for one
-- large deletion (a hash join reading both tables whole) would otherwise serve every later one.
CREATE FUNCTION octohooks_forget_deliveries() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  DELETE FROM message_destinations WHERE message_id = ANY (ARRAY(SELECT id FROM removed));
  DELETE FROM attempts WHERE message_id = ANY (ARRAY(SELECT id FROM removed));
  RETURN NULL;
END
$$;

CREATE TRIGGER messages_forget_deliveries AFTER DELETE ON messages
  REFERENCING OLD TABLE AS removed
  FOR EACH STATEMENT EXECUTE FUNCTION octohooks_forget_deliveries();

CREATE FUNCTION octohooks_forget_all_deliveries() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  TRUNCATE message_destinations, attempts;
  RETURN NULL;
END
$$;

CREATE TRIGGER messages_forget_all_deliveries AFTER TRUNCATE ON messages
  FOR EACH STATEMENT EXECUTE FUNCTION octohooks_forget_all_deliveries();

ALTER TABLE message_destinations DROP CONSTRAINT message_destinations_message_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT attempts_message_id_fkey;
