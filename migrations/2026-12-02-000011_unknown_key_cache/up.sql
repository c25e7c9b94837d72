-- API processes also remember API keys found to be unknown, so that a wrong key repeated costs
-- no query. A key inserted later must end that at once in every process: inserts of keys now
-- send the same notice as changes do.
CREATE TRIGGER api_keys_lookups_inserted AFTER INSERT ON api_keys
    FOR EACH ROW EXECUTE FUNCTION octohooks_lookups_changed();
