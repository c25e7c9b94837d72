CREATE INDEX message_destinations_endpoint ON message_destinations (endpoint_id);
