-- Operational webhooks: an environment's own endpoints for what happens to its customers'
-- endpoints. They are ordinary endpoints of one hidden application per environment (created
-- with the first of them), so operational events go through the same outbox, dispatcher,
-- signing and attempt records as every message. The application is never listed nor found
-- by id or uid, and messages cannot be sent to it through the API.
ALTER TABLE applications ADD COLUMN operational boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX applications_operational ON applications (environment_id) WHERE operational;

-- A time-ordered id (UUID version 7) as the services make them, for messages made in SQL: the
-- 48-bit millisecond time of `at`, then random bits.
CREATE FUNCTION octohooks_uuid_v7(at timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send((extract(epoch FROM at) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

-- Emits one operational event of `p_environment`: a message of the environment's operational
-- application with body {type, timestamp, data}, a destination and a job due now for each
-- enabled operational endpoint whose event type filter takes `p_type`. Called inside the
-- transaction of the change it reports, so the event commits or rolls back with it. Returns the
-- number of endpoints it was queued for; with none (the usual case) it stores nothing.
-- The endpoints are taken with a key-share lock, skipping any that another transaction is
-- deleting: an operator deleting an operational endpoint never makes the changes that raise
-- events (an endpoint update, a recorded attempt) wait for it or fail.
CREATE FUNCTION octohooks_emit_operational(p_environment uuid, p_type text, p_data jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_app uuid;
    v_now timestamptz := clock_timestamp();
    v_message uuid;
    v_targets uuid[];
BEGIN
    SELECT id INTO v_app FROM applications WHERE environment_id = p_environment AND operational;
    IF v_app IS NULL THEN
        RETURN 0;
    END IF;
    SELECT array_agg(id) INTO v_targets FROM (
        SELECT id FROM endpoints
        WHERE application_id = v_app AND enabled
          AND (cardinality(event_types) = 0 OR p_type = ANY (event_types))
        FOR KEY SHARE SKIP LOCKED) AS subscribed;
    IF v_targets IS NULL THEN
        RETURN 0;
    END IF;
    v_message := octohooks_uuid_v7(v_now);
    INSERT INTO messages (id, application_id, uid, event_type, channels, payload, created)
    VALUES (v_message, v_app, NULL, p_type, '{}',
            jsonb_build_object('type', p_type,
                               'timestamp', (extract(epoch FROM v_now) * 1000)::bigint,
                               'data', p_data)::text,
            v_now);
    INSERT INTO message_destinations (message_id, endpoint_id, status, next_attempt, updated)
    SELECT v_message, target, 'pending', v_now, v_now FROM unnest(v_targets) AS target;
    INSERT INTO outbox (message_id, endpoint_id, attempt, trigger_type, due)
    SELECT v_message, target, 0, 'scheduled', v_now FROM unnest(v_targets) AS target;
    RETURN cardinality(v_targets);
END
$$;
