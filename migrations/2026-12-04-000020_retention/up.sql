-- Retention: history older than OCTOHOOKS_RETENTION is removed, payloads can go sooner.
-- An expunged message keeps its metadata, destinations and attempts; its payload reads `{}`.
ALTER TABLE messages ADD COLUMN expunged boolean NOT NULL DEFAULT false;
-- When the message asked for its payload to go (`payloadRetentionPeriod`), if it did.
ALTER TABLE messages ADD COLUMN payload_expires timestamptz;
-- Only messages that asked are indexed, so that ingest of the others pays nothing for it.
CREATE INDEX messages_payload_expires ON messages (payload_expires)
    WHERE payload_expires IS NOT NULL AND NOT expunged;
-- The hourly counts of endpoint statistics go by hour.
CREATE INDEX endpoint_attempt_counts_hour ON endpoint_attempt_counts (hour);
-- How far the expunging of payloads by age (OCTOHOOKS_PAYLOAD_RETENTION) has gone, in message id
-- (so creation time) order: each pass goes on from there instead of reading expunged rows again.
CREATE TABLE retention_progress (
    sweep text PRIMARY KEY,
    after uuid NOT NULL
);
