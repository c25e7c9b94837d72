DROP INDEX IF EXISTS message_destinations_by_endpoint;
