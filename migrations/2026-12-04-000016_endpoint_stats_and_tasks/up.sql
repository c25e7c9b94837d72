-- Endpoint statistics that cost the same whatever the history: attempts are counted per
-- endpoint and hour by the statements that record them (octohooks_db::deliveries), so
-- `GET …/stats` sums a few hundred rows instead of reading attempts. Each row is split in
-- `shard`s by the recording connection, so that dispatchers recording attempts of one busy
-- endpoint at once do not queue on one row lock.
-- No foreign key (like attempts): deleting an endpoint removes its counts in the same
-- transaction (`octohooks_forget_endpoint_counts`).
CREATE TABLE endpoint_attempt_counts (
    endpoint_id uuid NOT NULL,
    hour timestamptz NOT NULL,
    shard smallint NOT NULL,
    successes bigint NOT NULL DEFAULT 0,
    failures bigint NOT NULL DEFAULT 0,
    last_success timestamptz,
    last_failure timestamptz,
    PRIMARY KEY (endpoint_id, hour, shard)
);

-- Endpoints deleted directly or with their application or environment take their counts along.
CREATE FUNCTION octohooks_forget_endpoint_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM endpoint_attempt_counts c USING old_endpoints o WHERE c.endpoint_id = o.id;
    RETURN NULL;
END $$;

CREATE TRIGGER endpoints_forget_counts AFTER DELETE ON endpoints
    REFERENCING OLD TABLE AS old_endpoints
    FOR EACH STATEMENT EXECUTE FUNCTION octohooks_forget_endpoint_counts();

-- Attempts recorded before this migration are counted once, here.
INSERT INTO endpoint_attempt_counts
    (endpoint_id, hour, shard, successes, failures, last_success, last_failure)
SELECT endpoint_id, date_trunc('hour', created, 'UTC'), 0,
       count(*) FILTER (WHERE status = 'success'),
       count(*) FILTER (WHERE status <> 'success'),
       max(created) FILTER (WHERE status = 'success'),
       max(created) FILTER (WHERE status <> 'success')
FROM attempts
GROUP BY 1, 2;

-- Deliveries an endpoint still waits for, read by the stats without visiting its history.
CREATE INDEX message_destinations_pending_by_endpoint
    ON message_destinations (endpoint_id, next_attempt) WHERE status = 'pending';

-- Recover and replay: work that runs in the background in bounded batches. `position` is the
-- last message id examined; a batch queues its deliveries and moves `position` in one
-- transaction, so a task resumed after a crash goes on where the last commit left it and never
-- queues one message twice. A runner holds a task while `claimed_until` lies ahead.
CREATE TABLE background_tasks (
    id uuid PRIMARY KEY,
    environment_id uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    application_id uuid NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    endpoint_id uuid NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('endpoint.recover', 'endpoint.replay')),
    status text NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
    since timestamptz NOT NULL,
    until timestamptz NOT NULL,
    position uuid,
    messages_scanned bigint NOT NULL DEFAULT 0,
    messages_queued bigint NOT NULL DEFAULT 0,
    failure text,
    claimed_until timestamptz,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL
);
CREATE INDEX background_tasks_runnable ON background_tasks (created) WHERE status = 'running';
CREATE INDEX background_tasks_page ON background_tasks (environment_id, id DESC);
CREATE INDEX background_tasks_endpoint ON background_tasks (endpoint_id);
