//! Diesel's view of the tables created by `migrations/`.

// @generated-style table definitions kept by hand next to the migrations.
diesel::table! {
    environments (id) {
        id -> Uuid,
        name -> Text,
        created -> Timestamptz,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        environment_id -> Uuid,
        key_hash -> Bytea,
        created -> Timestamptz,
        prefix -> Nullable<Text>,
        last_used -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    applications (id) {
        id -> Uuid,
        environment_id -> Uuid,
        uid -> Nullable<Text>,
        name -> Text,
        created -> Timestamptz,
        updated -> Timestamptz,
        portal_revoked_before -> Nullable<Timestamptz>,
        operational -> Bool,
    }
}

diesel::table! {
    endpoints (id) {
        id -> Uuid,
        application_id -> Uuid,
        uid -> Nullable<Text>,
        name -> Text,
        description -> Text,
        url -> Text,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        channels -> Array<Text>,
        event_types -> Array<Text>,
        headers -> Jsonb,
        created -> Timestamptz,
        updated -> Timestamptz,
        failing_since -> Nullable<Timestamptz>,
        rate_limit -> Nullable<Int4>,
        client_certificate -> Nullable<Text>,
        client_key -> Nullable<Text>,
    }
}

diesel::table! {
    endpoint_secrets (id) {
        id -> Uuid,
        endpoint_id -> Uuid,
        secret -> Text,
        created -> Timestamptz,
        expires -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    event_types (environment_id, name) {
        environment_id -> Uuid,
        name -> Text,
        description -> Text,
        archived -> Bool,
        created -> Timestamptz,
        updated -> Timestamptz,
        deprecated -> Bool,
        group_name -> Nullable<Text>,
        schemas -> Nullable<Jsonb>,
        schema_validation -> Text,
    }
}

diesel::table! {
    messages (id) {
        id -> Uuid,
        application_id -> Uuid,
        uid -> Nullable<Text>,
        event_type -> Text,
        channels -> Array<Text>,
        payload -> Text,
        created -> Timestamptz,
        example -> Bool,
        expunged -> Bool,
        payload_expires -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    retention_progress (sweep) {
        sweep -> Text,
        after -> Uuid,
    }
}

diesel::table! {
    message_destinations (message_id, endpoint_id) {
        message_id -> Uuid,
        endpoint_id -> Uuid,
        status -> Text,
        scheduled_attempts -> Int4,
        attempt_count -> Int4,
        next_attempt -> Nullable<Timestamptz>,
        updated -> Timestamptz,
    }
}

diesel::table! {
    attempts (id) {
        id -> Uuid,
        message_id -> Uuid,
        endpoint_id -> Uuid,
        url -> Text,
        status -> Text,
        response_status_code -> Int4,
        response -> Text,
        response_duration_ms -> Int8,
        trigger_type -> Text,
        created -> Timestamptz,
        job_id -> Nullable<Int8>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        message_id -> Uuid,
        endpoint_id -> Uuid,
        attempt -> Int4,
        trigger_type -> Text,
        due -> Timestamptz,
        claimed_until -> Nullable<Timestamptz>,
        traceparent -> Nullable<Text>,
        deferrals -> Int4,
    }
}

diesel::table! {
    outbox_fanouts (id) {
        id -> Int8,
        message_id -> Uuid,
        due -> Timestamptz,
        claimed_until -> Nullable<Timestamptz>,
        traceparent -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (environment_id, key) {
        environment_id -> Uuid,
        key -> Text,
        request_path -> Text,
        status_code -> Nullable<Int4>,
        response_body -> Nullable<Bytea>,
        created -> Timestamptz,
        owner -> Nullable<Uuid>,
        request_fingerprint -> Nullable<Bytea>,
        object_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    background_tasks (id) {
        id -> Uuid,
        environment_id -> Uuid,
        application_id -> Uuid,
        endpoint_id -> Uuid,
        kind -> Text,
        status -> Text,
        since -> Timestamptz,
        until -> Timestamptz,
        position -> Nullable<Uuid>,
        messages_scanned -> Int8,
        messages_queued -> Int8,
        failure -> Nullable<Text>,
        claimed_until -> Nullable<Timestamptz>,
        created -> Timestamptz,
        updated -> Timestamptz,
    }
}

diesel::joinable!(api_keys -> environments (environment_id));
diesel::joinable!(applications -> environments (environment_id));
diesel::joinable!(endpoints -> applications (application_id));
diesel::joinable!(endpoint_secrets -> endpoints (endpoint_id));
diesel::joinable!(messages -> applications (application_id));

diesel::allow_tables_to_appear_in_same_query!(
    environments,
    api_keys,
    applications,
    endpoints,
    endpoint_secrets,
    event_types,
    messages,
    message_destinations,
    attempts,
    outbox,
    outbox_fanouts,
    idempotency_keys,
    background_tasks,
);
