-- The index on the endpoint alone gives way to the one on (endpoint, message) of 000026. If that
-- one's concurrent build failed and left it invalid, it is built again here, in this transaction,
-- before the old one goes: deleting an endpoint must always find its destinations by index.
DO $$
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE c.relname = 'message_destinations_by_endpoint' AND i.indisvalid
  ) THEN
    DROP INDEX IF EXISTS message_destinations_by_endpoint;
    CREATE INDEX message_destinations_by_endpoint ON message_destinations (endpoint_id, message_id);
  END IF;
END
$$;
DROP INDEX message_destinations_endpoint;
