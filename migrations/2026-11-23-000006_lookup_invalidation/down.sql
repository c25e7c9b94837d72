DROP TRIGGER applications_lookups_truncated ON applications;
DROP TRIGGER api_keys_lookups_truncated ON api_keys;
DROP TRIGGER environments_lookups_truncated ON environments;
DROP TRIGGER applications_lookups_changed ON applications;
DROP TRIGGER api_keys_lookups_changed ON api_keys;
DROP TRIGGER environments_lookups_changed ON environments;
DROP FUNCTION octohooks_lookups_changed();
