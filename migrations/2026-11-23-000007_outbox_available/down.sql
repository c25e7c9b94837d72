CREATE INDEX outbox_endpoint ON outbox (endpoint_id);
DROP INDEX outbox_available;
CREATE INDEX outbox_due ON outbox (due);
