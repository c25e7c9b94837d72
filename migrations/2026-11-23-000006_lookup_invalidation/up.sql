-- API processes cache the API-key and application lookups of the message hot path. Any change
-- to those rows (a revoked key, a deleted application, a uid given to another one), by the API
-- or by hand, tells every listening process to forget what it cached; the notice is sent when
-- the change commits.
CREATE FUNCTION octohooks_lookups_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('octohooks_lookups', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER environments_lookups_changed AFTER UPDATE OR DELETE ON environments
    FOR EACH ROW EXECUTE FUNCTION octohooks_lookups_changed();
CREATE TRIGGER api_keys_lookups_changed AFTER UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION octohooks_lookups_changed();
CREATE TRIGGER applications_lookups_changed AFTER UPDATE OR DELETE ON applications
    FOR EACH ROW EXECUTE FUNCTION octohooks_lookups_changed();
CREATE TRIGGER environments_lookups_truncated AFTER TRUNCATE ON environments
    FOR EACH STATEMENT EXECUTE FUNCTION octohooks_lookups_changed();
CREATE TRIGGER api_keys_lookups_truncated AFTER TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION octohooks_lookups_changed();
CREATE TRIGGER applications_lookups_truncated AFTER TRUNCATE ON applications
    FOR EACH STATEMENT EXECUTE FUNCTION octohooks_lookups_changed();
