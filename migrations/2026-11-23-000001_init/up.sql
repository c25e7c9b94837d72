-- Tenants and their credentials.
CREATE TABLE environments (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);

-- API keys are stored only as SHA-256 hashes; revoking deletes the row.
CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    environment_id uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    key_hash bytea NOT NULL UNIQUE,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_environment ON api_keys (environment_id, id);

CREATE TABLE applications (
    id uuid PRIMARY KEY,
    environment_id uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    uid text,
    name text NOT NULL,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL,
    UNIQUE (environment_id, uid)
);
CREATE INDEX applications_page ON applications (environment_id, id);

CREATE TABLE endpoints (
    id uuid PRIMARY KEY,
    application_id uuid NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    uid text,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    url text NOT NULL,
    enabled boolean NOT NULL,
    disabled_reason text,
    channels text[] NOT NULL,
    event_types text[] NOT NULL,
    headers jsonb NOT NULL,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL,
    UNIQUE (application_id, uid)
);
CREATE INDEX endpoints_page ON endpoints (application_id, id);

-- The current secret has no expiry; a rotated one keeps signing until `expires`.
CREATE TABLE endpoint_secrets (
    id uuid PRIMARY KEY,
    endpoint_id uuid NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    secret text NOT NULL,
    created timestamptz NOT NULL,
    expires timestamptz
);
CREATE INDEX endpoint_secrets_endpoint ON endpoint_secrets (endpoint_id, created DESC);

CREATE TABLE event_types (
    environment_id uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text NOT NULL,
    archived boolean NOT NULL,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL,
    PRIMARY KEY (environment_id, name)
);

-- `payload` keeps the request's JSON text byte for byte (never re-serialised).
CREATE TABLE messages (
    id uuid PRIMARY KEY,
    application_id uuid NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    uid text,
    event_type text NOT NULL,
    channels text[] NOT NULL,
    payload text NOT NULL,
    created timestamptz NOT NULL,
    UNIQUE (application_id, uid)
);
CREATE INDEX messages_page ON messages (application_id, id DESC);
CREATE INDEX messages_by_event_type ON messages (application_id, event_type, id DESC);
CREATE INDEX messages_by_channel ON messages USING gin (channels);

-- One row per (message, endpoint) chosen by the fan-out: where its delivery stands.
CREATE TABLE message_destinations (
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    endpoint_id uuid NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    status text NOT NULL,
    scheduled_attempts integer NOT NULL DEFAULT 0,
    attempt_count integer NOT NULL DEFAULT 0,
    next_attempt timestamptz,
    updated timestamptz NOT NULL,
    PRIMARY KEY (message_id, endpoint_id)
);
CREATE INDEX message_destinations_endpoint ON message_destinations (endpoint_id);

CREATE TABLE attempts (
    id uuid PRIMARY KEY,
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    endpoint_id uuid NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    url text NOT NULL,
    status text NOT NULL,
    response_status_code integer NOT NULL,
    response text NOT NULL,
    response_duration_ms bigint NOT NULL,
    trigger_type text NOT NULL,
    created timestamptz NOT NULL
);
CREATE INDEX attempts_by_message ON attempts (message_id, id DESC);
CREATE INDEX attempts_by_endpoint ON attempts (endpoint_id, id DESC);

-- Transactional outbox and retry schedule in one: a row is a delivery job due at `due`.
-- A relay claims due rows (`claimed_until`), publishes them to RabbitMQ with publisher
-- confirms, then deletes them. A claim that outlives its holder expires and is taken again.
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    endpoint_id uuid NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    trigger_type text NOT NULL,
    due timestamptz NOT NULL,
    claimed_until timestamptz
);
CREATE INDEX outbox_due ON outbox (due);
CREATE INDEX outbox_message ON outbox (message_id);
CREATE INDEX outbox_endpoint ON outbox (endpoint_id);

-- First successful response of every POST made with an Idempotency-Key.
CREATE TABLE idempotency_keys (
    environment_id uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    key text NOT NULL,
    request_path text NOT NULL,
    status_code integer,
    response_body bytea,
    created timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created);
