DROP TABLE background_tasks;
DROP INDEX message_destinations_pending_by_endpoint;
DROP TRIGGER endpoints_forget_counts ON endpoints;
DROP FUNCTION octohooks_forget_endpoint_counts();
DROP TABLE endpoint_attempt_counts;
