DROP TRIGGER event_types_lookups_truncated ON event_types;
DROP TRIGGER event_types_lookups_changed ON event_types;
ALTER TABLE event_types
    DROP COLUMN schema_validation,
    DROP COLUMN schemas,
    DROP COLUMN group_name,
    DROP COLUMN deprecated;
