CREATE INDEX CONCURRENTLY IF NOT EXISTS message_destinations_pending
    ON message_destinations (next_attempt) WHERE status = 'pending';
