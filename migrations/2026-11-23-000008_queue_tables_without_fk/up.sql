-- Delivery jobs no longer check their message and endpoint by foreign key, nor attempts their
-- endpoint. Each such check ran a query and took a KEY SHARE lock on the parent row for every
-- delivery, so every concurrent transaction of a busy endpoint locked the same endpoint row.
-- A job whose message or endpoint is gone is dropped by the dispatcher; deleting an endpoint
-- deletes its jobs and attempts in the same transaction; attempts still go with their message.
ALTER TABLE outbox DROP CONSTRAINT outbox_message_id_fkey;
ALTER TABLE outbox DROP CONSTRAINT outbox_endpoint_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT attempts_endpoint_id_fkey;
