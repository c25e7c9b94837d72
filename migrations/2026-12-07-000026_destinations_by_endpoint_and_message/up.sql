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
-- plainly. The index still serves what the old one did: the foreign key's cascade when an
-- endpoint is deleted, and any read of one endpoint's destinations.
CREATE INDEX message_destinations_by_endpoint ON message_destinations (endpoint_id, message_id);
DROP INDEX message_destinations_endpoint;
