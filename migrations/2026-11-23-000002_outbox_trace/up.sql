-- W3C traceparent of the request that caused the job, so that retries continue its trace.
ALTER TABLE outbox ADD COLUMN traceparent text;

-- Finds deliveries whose job went missing (e.g. a broker that lost its data) quickly.
CREATE INDEX message_destinations_pending ON message_destinations (next_attempt)
    WHERE status = 'pending';
