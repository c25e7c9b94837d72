DROP TRIGGER api_keys_lookups_inserted ON api_keys;
