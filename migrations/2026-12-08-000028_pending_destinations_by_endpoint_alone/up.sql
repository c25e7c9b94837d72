-- Pending deliveries are indexed once, by endpoint (000016), no longer also by time alone
-- (000002). Every destination is inserted pending, so each index of pending ones costs every
-- delivery a write at acceptance: this one was read only by the relay's periodic search for
-- stranded deliveries, which finds them as well in the index by endpoint, a partial index of
-- pending rows alone whose second column it filters on.
--
-- Dropped concurrently (this migration runs outside a transaction, metadata.toml), so that
-- acceptance, which inserts destinations, does not wait for the table's lock.
DROP INDEX CONCURRENTLY IF EXISTS message_destinations_pending;
