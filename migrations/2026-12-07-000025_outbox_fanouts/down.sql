DROP TABLE outbox_fanouts;
