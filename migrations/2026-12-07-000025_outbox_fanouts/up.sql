-- The first attempts of a message to several endpoints wait as one row, not one per endpoint:
-- a fan-out to twenty endpoints inserted, indexed and deleted twenty outbox rows, most of the
-- database's work per delivery after the destinations and attempts themselves. A relay that
-- claims a row publishes a job for each destination of the message that still waits for its
-- first attempt, each with an id drawn from the outbox's sequence (ids stay unique across both
-- tables, so an attempt still records the job it came from). Versions before this table
-- neither write nor read it; a row they never publish is found by the stranded sweep.
CREATE TABLE outbox_fanouts (
    id bigserial PRIMARY KEY,
    message_id uuid NOT NULL,
    due timestamptz NOT NULL,
    claimed_until timestamptz,
    traceparent text
);
CREATE INDEX outbox_fanouts_available ON outbox_fanouts ((greatest(due, claimed_until)));
