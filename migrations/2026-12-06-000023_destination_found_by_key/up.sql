-- Whether a destination is still to be delivered (neither delivered nor failed for good), for
-- the statement that records a batch of attempts.
--
-- Its declared cost is what matters, not its work. A prepared statement keeps the plan Postgres
-- made on its first executions until the table's statistics change, and autovacuum first
-- analyzes a new table up to a minute after it fills. On a young table, reading it whole looked
-- cheaper than a lookup by key for each attempt of the batch, and that plan stayed while the
-- table grew: each batch of a new deployment under load read every destination, longer every
-- second. Declared this costly per row, the condition makes any plan that checks more than the
-- rows found by key the dearer one, at every size of the table.
CREATE FUNCTION octohooks_still_pending(status text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 10000 AS $$
BEGIN
  RETURN status NOT IN ('success', 'failed');
END
$$;
