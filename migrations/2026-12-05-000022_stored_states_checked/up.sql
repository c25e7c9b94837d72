-- The stored spellings of the pipeline's states (octohooks_domain::status and
-- octohooks_domain::job::TriggerType) are the only values these columns take: a statement that
-- writes another fails at once, instead of storing a value that no reader knows. The SQL of
-- octohooks_db spells some of them as literals (partial indexes match only literals), and this is
-- what keeps those literals honest; tests/tests/stored_states.rs checks that each list equals its
-- enum. NOT VALID: existing rows, all written through the same enums, are not scanned; new and
-- changed rows are checked. background_tasks has had its checks since it was made.
ALTER TABLE message_destinations ADD CONSTRAINT message_destinations_status_known
    CHECK (status IN ('pending', 'success', 'failed')) NOT VALID;
ALTER TABLE attempts ADD CONSTRAINT attempts_status_known
    CHECK (status IN ('success', 'failed')) NOT VALID;
ALTER TABLE attempts ADD CONSTRAINT attempts_trigger_type_known
    CHECK (trigger_type IN ('scheduled', 'manual')) NOT VALID;
ALTER TABLE outbox ADD CONSTRAINT outbox_trigger_type_known
    CHECK (trigger_type IN ('scheduled', 'manual')) NOT VALID;
