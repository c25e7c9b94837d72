CREATE INDEX message_destinations_endpoint ON message_destinations (endpoint_id);
DROP INDEX message_destinations_by_endpoint;
