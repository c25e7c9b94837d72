ALTER TABLE applications DROP COLUMN portal_revoked_before;
DROP TRIGGER api_keys_lookups_changed ON api_keys;
CREATE TRIGGER api_keys_lookups_changed AFTER UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION octohooks_lookups_changed();
ALTER TABLE api_keys DROP COLUMN last_used;
ALTER TABLE api_keys DROP COLUMN prefix;
