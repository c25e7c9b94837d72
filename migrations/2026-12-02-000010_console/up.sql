-- The console lists API keys without showing them: a short prefix of each new key, and when it
-- was last used (written at most once a minute per key and process). Only changes to what a
-- lookup reads tell the processes to forget their caches, so that recording a use does not.
ALTER TABLE api_keys ADD COLUMN prefix text;
ALTER TABLE api_keys ADD COLUMN last_used timestamptz;
DROP TRIGGER api_keys_lookups_changed ON api_keys;
CREATE TRIGGER api_keys_lookups_changed AFTER UPDATE OF id, environment_id, key_hash OR DELETE
    ON api_keys FOR EACH ROW EXECUTE FUNCTION octohooks_lookups_changed();

-- Consumer portal tokens issued before this time are refused ("expire all" of an application).
-- A change is a change of the application row, so every process forgets its cached value.
ALTER TABLE applications ADD COLUMN portal_revoked_before timestamptz;
