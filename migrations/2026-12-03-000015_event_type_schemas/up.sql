-- Event types gain a catalog's fields: `deprecated`, `group_name`, and `schemas`, a map of
-- version ("1", "2", …) to JSON Schema whose highest version is the latest. With
-- `schema_validation = 'enforce'` the API refuses a message whose payload does not match its
-- event type's latest schema, so every API process caches the compiled schemas; any change to
-- event types (insert included: a new enforced type must apply at once) tells them to forget.
ALTER TABLE event_types
    ADD COLUMN deprecated boolean NOT NULL DEFAULT false,
    ADD COLUMN group_name text,
    ADD COLUMN schemas jsonb,
    ADD COLUMN schema_validation text NOT NULL DEFAULT 'off'
        CHECK (schema_validation IN ('off', 'enforce'));

CREATE TRIGGER event_types_lookups_changed AFTER INSERT OR UPDATE OR DELETE ON event_types
    FOR EACH STATEMENT EXECUTE FUNCTION octohooks_lookups_changed();
CREATE TRIGGER event_types_lookups_truncated AFTER TRUNCATE ON event_types
    FOR EACH STATEMENT EXECUTE FUNCTION octohooks_lookups_changed();
