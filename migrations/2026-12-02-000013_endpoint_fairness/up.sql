-- Fairness between endpoints (proto-docs/fairness.md).

-- Messages per second one endpoint may receive, across all dispatchers; NULL: no limit.
ALTER TABLE endpoints ADD COLUMN rate_limit integer CHECK (rate_limit IS NULL OR rate_limit > 0);

-- How many times a job was put back to wait for its endpoint's turn: such jobs go to the retry
-- queue, behind nobody's first attempt, and wait longer each time.
ALTER TABLE outbox ADD COLUMN deferrals integer NOT NULL DEFAULT 0;

-- Delivery slots each dispatcher holds for an endpoint; the sum of the live grants of one
-- endpoint never exceeds the cap the dispatchers ask with. A grant lapses unless its holder
-- renews it, so the slots of a dispatcher that died come back by themselves. Unlogged: this is
-- state of running processes, worth no WAL and no fsync; after a crash of Postgres it starts
-- empty, which is correct, since every attempt in flight then failed to be recorded anyway.
CREATE UNLOGGED TABLE endpoint_slot_grants (
    endpoint_id uuid NOT NULL,
    holder uuid NOT NULL,
    slots integer NOT NULL CHECK (slots >= 0),
    expires timestamptz NOT NULL,
    PRIMARY KEY (endpoint_id, holder)
);

-- Token buckets of rate-limited endpoints: `tokens` as of `updated`, refilled at the rate,
-- holding at most one second's worth.
CREATE UNLOGGED TABLE endpoint_rate_buckets (
    endpoint_id uuid PRIMARY KEY,
    tokens double precision NOT NULL,
    updated timestamptz NOT NULL
);

-- Sets `holder`'s grant for `endpoint` to as many of `wanted` slots as the cap leaves, never
-- fewer than `keep` (the attempts it has running) and returns it. Callers of one endpoint are
-- serialized by a transaction-level advisory lock, not by a lock on the endpoint's row, which
-- the dispatchers update for other reasons.
CREATE FUNCTION octohooks_grant_slots(
    p_endpoint uuid, p_holder uuid, p_wanted integer, p_keep integer, p_cap integer,
    p_ttl_ms integer
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    others integer;
    granted integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('octohooks.slots:' || p_endpoint::text, 0));
    DELETE FROM endpoint_slot_grants WHERE endpoint_id = p_endpoint AND expires < now();
    SELECT coalesce(sum(slots), 0) INTO others FROM endpoint_slot_grants
        WHERE endpoint_id = p_endpoint AND holder <> p_holder;
    granted := greatest(least(p_wanted, p_cap - others), p_keep, 0);
    INSERT INTO endpoint_slot_grants (endpoint_id, holder, slots, expires)
        VALUES (p_endpoint, p_holder, granted, now() + p_ttl_ms * interval '1 millisecond')
        ON CONFLICT (endpoint_id, holder)
        DO UPDATE SET slots = excluded.slots, expires = excluded.expires;
    RETURN granted;
END $$;

-- Takes one token of `endpoint`'s bucket at `p_rate` per second: 0 when taken, otherwise the
-- seconds until the next token (nothing taken).
CREATE FUNCTION octohooks_take_token(p_endpoint uuid, p_rate integer)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    stored double precision;
    stamp timestamptz;
    available double precision;
    at timestamptz;
BEGIN
    INSERT INTO endpoint_rate_buckets (endpoint_id, tokens, updated)
        VALUES (p_endpoint, p_rate, clock_timestamp())
        ON CONFLICT (endpoint_id) DO NOTHING;
    SELECT tokens, updated INTO stored, stamp FROM endpoint_rate_buckets
        WHERE endpoint_id = p_endpoint FOR UPDATE;
    at := clock_timestamp();
    available := least(p_rate::double precision,
        stored + greatest(extract(epoch FROM at - stamp), 0) * p_rate);
    IF available >= 1 THEN
        UPDATE endpoint_rate_buckets SET tokens = available - 1, updated = at
            WHERE endpoint_id = p_endpoint;
        RETURN 0;
    END IF;
    RETURN (1 - available) / p_rate;
END $$;
