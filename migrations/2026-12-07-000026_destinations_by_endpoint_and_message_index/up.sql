-- A destination is found by its whole key, (message, endpoint), wherever an attempt needs it:
-- the dispatcher's context read and the statement that records attempts. Until now both named
-- the endpoint as text, so that the planner could not pick the index on the endpoint alone and
-- read every destination of the endpoint (which it did on young tables, see 000023). That
-- protection cost a fan-out dearly: each job read every destination of its message through the
-- primary key's leading column and compared each endpoint as text, 20 rows read for one found
-- in a fan-out to 20 endpoints, 50 for one in a fan-out to 50.
--
-- With the endpoint's index carrying the message as well, both indexes that the planner can
-- choose for a lookup by the whole key find the one row, so the lookup can name the endpoint
-- plainly. The index still serves what the old one did (dropped by 000027): the foreign key's
-- cascade when an endpoint is deleted, and any read of one endpoint's destinations.
--
-- Built concurrently (this migration runs outside a transaction, metadata.toml), so that
-- acceptance, which inserts destinations, goes on while a large table is indexed. A build that
-- fails leaves an invalid index behind; 000027 rebuilds it then.
CREATE INDEX CONCURRENTLY IF NOT EXISTS message_destinations_by_endpoint
    ON message_destinations (endpoint_id, message_id);
