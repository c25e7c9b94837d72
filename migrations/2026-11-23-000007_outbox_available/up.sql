-- Relays look for jobs that are due and not claimed (or whose claim lapsed). Under load the
-- outbox holds thousands of jobs claimed by the API that accepted them, and an index on `due`
-- made every relay pass step over all of them. A job becomes available at the later of its due
-- time and its claim's end (`greatest` ignores a NULL claim), so one index on that moment lets a
-- pass read only what it can take.
DROP INDEX outbox_due;
CREATE INDEX outbox_available ON outbox ((greatest(due, claimed_until)));
-- Jobs live for milliseconds; looking them up by endpoint is needed only when an endpoint is
-- deleted, and a scan of the small outbox serves that.
DROP INDEX outbox_endpoint;
