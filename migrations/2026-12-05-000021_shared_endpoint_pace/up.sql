-- Dispatchers share what they know of an endpoint's pace (proto-docs/fairness.md): a dispatcher
-- refused slots because others hold them learns from their grants whether the endpoint answers
-- fast (then its jobs wait in it for their share) or slowly (then they are put back at once).

-- The holder's attempt time to the endpoint in milliseconds; NULL while it has not attempted
-- it, and for grants written by a dispatcher of an earlier version.
ALTER TABLE endpoint_slot_grants ADD COLUMN pace_ms integer;

-- As octohooks_grant_slots(6 arguments), which earlier dispatchers keep calling during a rolling
-- upgrade, with the caller's pace stored in its grant; also returns the slowest pace of the
-- other holders of slots (NULL when none is known). An empty grant (a refused ask, which makes
-- the holders share) lasts 3 seconds unless asked again: a dispatcher that stopped asking does
-- not keep the others at half their share for the grant's whole lifetime.
CREATE FUNCTION octohooks_grant_slots(
    p_endpoint uuid, p_holder uuid, p_wanted integer, p_keep integer, p_cap integer,
    p_ttl_ms integer, p_pace_ms integer
) RETURNS TABLE (granted integer, others_pace_ms integer) LANGUAGE plpgsql AS $$
DECLARE
    others integer;
    slowest integer;
    given integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('octohooks.slots:' || p_endpoint::text, 0));
    DELETE FROM endpoint_slot_grants g WHERE g.endpoint_id = p_endpoint AND g.expires < now();
    SELECT coalesce(sum(g.slots), 0), max(g.pace_ms) FILTER (WHERE g.slots > 0)
        INTO others, slowest
        FROM endpoint_slot_grants g
        WHERE g.endpoint_id = p_endpoint AND g.holder <> p_holder;
    given := greatest(least(p_wanted, p_cap - others), p_keep, 0);
    INSERT INTO endpoint_slot_grants AS g (endpoint_id, holder, slots, expires, pace_ms)
        VALUES (p_endpoint, p_holder, given,
            now() + CASE WHEN given = 0 THEN least(p_ttl_ms, 3000) ELSE p_ttl_ms END
                * interval '1 millisecond',
            p_pace_ms)
        ON CONFLICT (endpoint_id, holder)
        DO UPDATE SET slots = excluded.slots, expires = excluded.expires,
            pace_ms = excluded.pace_ms;
    RETURN QUERY SELECT given, slowest;
END $$;
