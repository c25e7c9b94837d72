DROP TABLE background_tasks;
DROP INDEX message_destinations_pending_by_endpoint;
DROP TRIGGER endpoints_forget_counts ON endpoints;
DROP FUNCTION octohooks_forget_endpoint_counts();
DROP TRIGGER attempts_counted ON attempts;
DROP FUNCTION octohooks_count_attempts();
DROP TABLE endpoint_attempt_counts;
