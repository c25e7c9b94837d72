//! Operational webhooks in storage. An environment's operational endpoints are endpoints of its
//! one hidden operational application (never listed, never found by id or uid); an event is a
//! message of that application, queued by `octohooks_emit_operational` (migration 000019) in
//! the transaction of the change it reports. The recording of attempts raises the
//! `message.attempt.*` events in its own statements (see [`crate::deliveries`]); the endpoint
//! events are raised here.

use diesel::prelude::*;
use diesel::sql_types::{Jsonb, Nullable, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use octohooks_domain::operational::OperationalEventType;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::models::{Application, Endpoint};
use crate::schema::applications;
use crate::scope::Scoped;
use crate::{Conn, DbResult};

/// The operational application's display name (shown nowhere but in the database).
const APPLICATION_NAME: &str = "Operational webhooks";

/// The environment's operational application, created on first use; its scope reaches the
/// operational endpoints.
pub async fn application(conn: &mut Conn, environment_id: Uuid) -> DbResult<Scoped<Application>> {
    let find = applications::table
        .filter(applications::environment_id.eq(environment_id))
        .filter(applications::operational)
        .select(Application::as_select());
    if let Some(found) = find.first(conn).await.optional()? {
        return Ok(Scoped::new(found));
    }
    diesel::sql_query(
        "INSERT INTO applications (id, environment_id, uid, name, created, updated, operational) \
         VALUES ($1, $2, NULL, $3, now(), now(), true) \
         ON CONFLICT (environment_id) WHERE operational DO NOTHING",
    )
    .bind::<SqlUuid, _>(octohooks_domain::new_id())
    .bind::<SqlUuid, _>(environment_id)
    .bind::<Text, _>(APPLICATION_NAME)
    .execute(conn)
    .await?;
    Ok(Scoped::new(find.first(conn).await?))
}

/// Raises `event` about `endpoint` (as it is, or as it was when deleted) with the endpoint's
/// identifiers and `extra` fields in `data`; nothing when the endpoint is itself operational.
/// Run it in the transaction of the change.
pub async fn endpoint_event(
    conn: &mut Conn,
    endpoint: &Endpoint,
    event: OperationalEventType,
    extra: Value,
) -> DbResult<()> {
    diesel::sql_query(
        "SELECT octohooks_emit_operational(a.environment_id, $1, \
           jsonb_build_object('appId', a.id, 'appUid', a.uid, 'endpointId', $2::uuid, \
             'endpointUid', $3::text) || $4::jsonb) \
         FROM applications a WHERE a.id = $5 AND NOT a.operational",
    )
    .bind::<Text, _>(event.as_str())
    .bind::<SqlUuid, _>(endpoint.id)
    .bind::<Nullable<Text>, _>(endpoint.uid.as_deref())
    .bind::<Jsonb, _>(extra)
    .bind::<SqlUuid, _>(endpoint.application_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Raises `endpoint.deleted` for every endpoint of an application about to be deleted with it.
pub async fn application_deleting(conn: &mut Conn, application_id: Uuid) -> DbResult<()> {
    diesel::sql_query(
        "SELECT octohooks_emit_operational(a.environment_id, 'endpoint.deleted', \
           jsonb_build_object('appId', a.id, 'appUid', a.uid, 'endpointId', e.id, \
             'endpointUid', e.uid)) \
         FROM endpoints e JOIN applications a ON a.id = e.application_id \
         WHERE a.id = $1 AND NOT a.operational",
    )
    .bind::<SqlUuid, _>(application_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The events a change of an endpoint from `before` to `after` raises: `endpoint.enabled` or
/// `endpoint.disabled` (by hand) when it was switched, `endpoint.updated` when anything else a
/// user sees changed.
pub fn changes(before: &Endpoint, after: &Endpoint) -> Vec<(OperationalEventType, Value)> {
    let mut events = Vec::new();
    if before.enabled && !after.enabled {
        events.push((
            OperationalEventType::EndpointDisabled,
            json!({"trigger": "manual", "failSince": before.failing_since.map(|t| t.timestamp_millis())}),
        ));
    } else if !before.enabled && after.enabled {
        events.push((OperationalEventType::EndpointEnabled, json!({})));
    }
    let settings = |e: &Endpoint| {
        (
            e.uid.clone(),
            e.name.clone(),
            e.description.clone(),
            e.url.clone(),
            e.channels.clone(),
            e.event_types.clone(),
            e.headers.clone(),
            e.rate_limit,
        )
    };
    if settings(before) != settings(after) {
        events.push((OperationalEventType::EndpointUpdated, json!({})));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn endpoint() -> Endpoint {
        Endpoint {
            id: Uuid::nil(),
            application_id: Uuid::nil(),
            uid: None,
            name: String::new(),
            description: String::new(),
            url: "https://example.com/hook".into(),
            enabled: true,
            disabled_reason: None,
            channels: vec![],
            event_types: vec![],
            headers: json!({}),
            created: Utc::now(),
            updated: Utc::now(),
            failing_since: None,
            rate_limit: None,
        }
    }

    #[test]
    fn a_switch_and_a_setting_are_told_apart() {
        let before = endpoint();
        assert!(changes(&before, &before).is_empty());
        let disabled = Endpoint {
            enabled: false,
            ..endpoint()
        };
        let kinds = |events: Vec<(OperationalEventType, Value)>| {
            events.into_iter().map(|(kind, _)| kind).collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(changes(&before, &disabled)),
            [OperationalEventType::EndpointDisabled]
        );
        assert_eq!(
            kinds(changes(&disabled, &before)),
            [OperationalEventType::EndpointEnabled]
        );
        let moved = Endpoint {
            url: "https://example.com/other".into(),
            enabled: false,
            ..endpoint()
        };
        assert_eq!(
            kinds(changes(&before, &moved)),
            [
                OperationalEventType::EndpointDisabled,
                OperationalEventType::EndpointUpdated
            ]
        );
        // Only the time of the change differs: nothing a user set.
        let touched = Endpoint {
            updated: Utc::now() + chrono::Duration::seconds(5),
            ..before.clone()
        };
        assert!(changes(&before, &touched).is_empty());
    }
}
