//! Recovery after an outage: `recover` resends what failed to an endpoint in a window,
//! `replay-missing` sends what it never got; both run as background tasks that any dispatcher
//! takes up, and `GET /background-tasks/{task}` tells how far they got. Endpoint statistics sit
//! here too: they are what an operator reads before and after recovering.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use octohooks_db::models::BackgroundTask;
use octohooks_db::tasks::{self, TaskFilter};
use octohooks_db::{pool, stats, Found as _, Page};
use octohooks_domain::status::{TaskKind, TaskStatus};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{find_endpoint, not_found_as};
use crate::auth::{Scope, Tenant};
use crate::body::JsonBody;
use crate::dto::{parse_time, BackgroundTaskOut, EndpointStatsOut, RecoverIn};
use crate::error::{ApiError, Problem, ProblemCode};
use crate::idempotency::{self, NewObject, Reply};
use crate::paging::{list_response, PageQuery};
use crate::scope::ScopedApp;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    let endpoint = "/applications/{app}/endpoints/{endpoint}";
    cfg.route(&format!("{endpoint}/recover"), web::post().to(recover))
        .route(
            &format!("{endpoint}/replay-missing"),
            web::post().to(replay_missing),
        )
        .route(&format!("{endpoint}/stats"), web::get().to(endpoint_stats))
        .route("/background-tasks", web::get().to(list_tasks))
        .route("/background-tasks/{task}", web::get().to(get_task));
}

/// Resends every message whose delivery to the endpoint failed for good, among the messages
/// created in the window. Each is queued once, as a manual attempt (as `resend` does).
#[utoipa::path(post, path = "/api/v1/applications/{app}/endpoints/{endpoint}/recover",
    tag = "endpoints", request_body = RecoverIn, security(("apiKey" = [])),
    params(("app" = String, Path, description = "Application id or uid"),
        ("endpoint" = String, Path, description = "Endpoint id or uid"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first successful response")),
    responses((status = 202, body = BackgroundTaskOut), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn recover(
    scoped: ScopedApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    JsonBody(body): JsonBody<RecoverIn>,
) -> Result<HttpResponse, ApiError> {
    start_task(scoped, req, state, &path.1, body, TaskKind::Recover).await
}

/// Sends the endpoint the messages created in the window that it never got (sent before it
/// existed or while it was disabled) and that its event type and channel filters take, each
/// once, with the usual retries.
#[utoipa::path(post, path = "/api/v1/applications/{app}/endpoints/{endpoint}/replay-missing",
    tag = "endpoints", request_body = RecoverIn, security(("apiKey" = [])),
    params(("app" = String, Path, description = "Application id or uid"),
        ("endpoint" = String, Path, description = "Endpoint id or uid"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first successful response")),
    responses((status = 202, body = BackgroundTaskOut), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn replay_missing(
    scoped: ScopedApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    JsonBody(body): JsonBody<RecoverIn>,
) -> Result<HttpResponse, ApiError> {
    start_task(scoped, req, state, &path.1, body, TaskKind::Replay).await
}

/// The window of a task: `since` before `until` (now when left out; a later time means now).
fn task_window(
    body: &RecoverIn,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let since = parse_time("since", &body.since.as_text())?;
    let until = body
        .until
        .as_ref()
        .map(|until| parse_time("until", &until.as_text()))
        .transpose()?
        .map_or(now, |until| until.min(now));
    if since >= until {
        return Err(ApiError::invalid(
            "since",
            "must be before until (and before now)",
        ));
    }
    Ok((since, until))
}

async fn start_task(
    ScopedApp { tenant, app, .. }: ScopedApp,
    req: HttpRequest,
    state: web::Data<AppState>,
    endpoint: &str,
    body: RecoverIn,
    kind: TaskKind,
) -> Result<HttpResponse, ApiError> {
    let (since, until) = task_window(&body, Utc::now())?;
    let mut conn = pool::connection(&state.db).await?;
    let endpoint = find_endpoint(&mut conn, app, endpoint).await?;
    drop(conn);
    if !endpoint.enabled {
        return Err(ApiError::Conflict {
            code: ProblemCode::Conflict,
            detail: "the endpoint is disabled; enable it before sending to it again".into(),
        });
    }
    let endpoint_id = endpoint.id;
    idempotency::run(
        state.clone(),
        tenant.environment_id,
        &req,
        move |object: NewObject| async move {
            let mut conn = pool::connection(&state.db).await?;
            if object.resumed {
                let earlier = tasks::find(&mut conn, tenant.environment_id, object.id).await;
                if let Some(earlier) = earlier.found()? {
                    return Reply::json(StatusCode::ACCEPTED, &BackgroundTaskOut::from(earlier));
                }
            }
            let now = Utc::now();
            let task = BackgroundTask {
                id: object.id,
                environment_id: tenant.environment_id,
                application_id: app.id(),
                endpoint_id,
                kind,
                status: TaskStatus::Running,
                since,
                until,
                position: None,
                messages_scanned: 0,
                messages_queued: 0,
                failure: None,
                claimed_until: None,
                created: now,
                updated: now,
            };
            let stored = tasks::create(&mut conn, &task).await.map_err(|err| {
                if err.is_foreign_key_violation() {
                    ApiError::NotFound("endpoint")
                } else {
                    err.into()
                }
            })?;
            Reply::json(StatusCode::ACCEPTED, &BackgroundTaskOut::from(stored))
        },
    )
    .await
}

/// The application a portal token is held to, if the caller has one.
fn portal_application(tenant: &Tenant) -> Option<Uuid> {
    match tenant.scope {
        Scope::Portal { application_id, .. } => Some(application_id),
        Scope::Environment => None,
    }
}

/// One background task of the caller's environment (or, for a portal token, of its
/// application).
#[utoipa::path(get, path = "/api/v1/background-tasks/{task}", tag = "background-tasks",
    params(("task" = Uuid, Path, description = "Task id")),
    security(("apiKey" = [])),
    responses((status = 200, body = BackgroundTaskOut), (status = 404, body = Problem)))]
pub async fn get_task(
    tenant: Tenant,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = Uuid::try_parse(&path).map_err(|_| ApiError::NotFound("background task"))?;
    let mut conn = pool::connection(&state.db).await?;
    let task = tasks::find(&mut conn, tenant.environment_id, id)
        .await
        .map_err(not_found_as("background task"))?;
    if portal_application(&tenant).is_some_and(|app| app != task.application_id) {
        return Err(ApiError::NotFound("background task"));
    }
    Ok(HttpResponse::Ok().json(BackgroundTaskOut::from(task)))
}

/// Filters of the task list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    /// Only tasks of this endpoint (id).
    pub endpoint_id: Option<Uuid>,
    /// Only tasks in this state: `running`, `finished` or `failed`.
    pub status: Option<String>,
}

/// Background tasks, newest first.
#[utoipa::path(get, path = "/api/v1/background-tasks", tag = "background-tasks",
    params(TaskQuery, PageQuery),
    security(("apiKey" = [])),
    responses((status = 200, body = [BackgroundTaskOut]), (status = 422, body = Problem)))]
pub async fn list_tasks(
    tenant: Tenant,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<TaskQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit()?;
    let cursor = page.uuid_iterator()?;
    let status = query
        .status
        .as_deref()
        .map(|text| {
            TaskStatus::parse(text)
                .map_err(|_| ApiError::invalid("status", "must be running, finished or failed"))
        })
        .transpose()?;
    let filter = TaskFilter {
        application_id: portal_application(&tenant),
        endpoint_id: query.endpoint_id,
        status,
    };
    let mut conn = pool::connection(&state.db).await?;
    let rows = tasks::list(&mut conn, tenant.environment_id, &filter, cursor, limit).await?;
    let page = Page::from_overfetch(rows, limit);
    let next = page.items.last().map(|task| task.id.to_string());
    let items = page
        .items
        .into_iter()
        .map(BackgroundTaskOut::from)
        .collect::<Vec<_>>();
    Ok(list_response(&req, &items, page.has_more, next))
}

/// The window of the statistics.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Attempts made at or after this time (epoch ms or RFC 3339), rounded down to the hour;
    /// 7 days ago when left out.
    pub since: Option<String>,
    /// ...and before this time, rounded up to the hour; now when left out.
    pub until: Option<String>,
}

/// Longest window the statistics sum over.
const STATS_MAX_WINDOW_DAYS: i64 = 400;

/// The window of the statistics as counted: whole hours around `[since, until)`.
fn stats_window(
    query: &StatsQuery,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let hour = TimeDelta::hours(1);
    let since = match &query.since {
        Some(text) => parse_time("since", text)?,
        None => now - TimeDelta::days(7),
    };
    let until = match &query.until {
        Some(text) => parse_time("until", text)?,
        None => now,
    };
    let since = since
        .duration_trunc(hour)
        .map_err(|_| ApiError::invalid("since", "is out of range"))?;
    let until = until
        .duration_round_up(hour)
        .map_err(|_| ApiError::invalid("until", "is out of range"))?;
    if since >= until {
        return Err(ApiError::invalid("since", "must be before until"));
    }
    if until - since > TimeDelta::days(STATS_MAX_WINDOW_DAYS) {
        return Err(ApiError::invalid(
            "since",
            format!("the window may span at most {STATS_MAX_WINDOW_DAYS} days"),
        ));
    }
    Ok((since, until))
}

/// Attempts to the endpoint in a window (successes, failures, the last of each) and the
/// deliveries it still waits for. Read from counters kept per hour: the cost does not grow
/// with the number of attempts.
#[utoipa::path(get, path = "/api/v1/applications/{app}/endpoints/{endpoint}/stats",
    tag = "endpoints",
    params(("app" = String, Path, description = "Application id or uid"),
        ("endpoint" = String, Path, description = "Endpoint id or uid"), StatsQuery),
    security(("apiKey" = [])),
    responses((status = 200, body = EndpointStatsOut), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn endpoint_stats(
    scoped: ScopedApp,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (since, until) = stats_window(&query, Utc::now())?;
    let mut conn = pool::connection(&state.db).await?;
    let endpoint = find_endpoint(&mut conn, scoped.app, &path.1).await?;
    let row = stats::endpoint(&mut conn, &endpoint, since, until).await?;
    Ok(HttpResponse::Ok().json(EndpointStatsOut::new(
        row,
        since.timestamp_millis(),
        until.timestamp_millis(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::TimeInput;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_task_window_ends_now_at_the_latest_and_starts_before_it_ends() {
        let now = at("2026-12-04T12:00:00Z");
        let body = |since: &str, until: Option<&str>| RecoverIn {
            since: TimeInput::Text(since.into()),
            until: until.map(|u| TimeInput::Text(u.into())),
        };
        assert_eq!(
            task_window(&body("2026-12-04T10:00:00Z", None), now).unwrap(),
            (at("2026-12-04T10:00:00Z"), now)
        );
        assert_eq!(
            task_window(
                &body("2026-12-04T10:00:00Z", Some("2027-01-01T00:00:00Z")),
                now
            )
            .unwrap()
            .1,
            now
        );
        for (since, until) in [
            ("2026-12-04T13:00:00Z", None),
            ("2026-12-04T10:00:00Z", Some("2026-12-04T10:00:00Z")),
            ("yesterday", None),
        ] {
            assert!(
                task_window(&body(since, until), now).is_err(),
                "{since} {until:?}"
            );
        }
    }

    #[test]
    fn the_stats_window_is_rounded_out_to_whole_hours() {
        let now = at("2026-12-04T12:34:56Z");
        let query = |since: Option<&str>, until: Option<&str>| StatsQuery {
            since: since.map(str::to_owned),
            until: until.map(str::to_owned),
        };
        assert_eq!(
            stats_window(&query(None, None), now).unwrap(),
            (at("2026-11-27T12:00:00Z"), at("2026-12-04T13:00:00Z"))
        );
        assert_eq!(
            stats_window(
                &query(Some("2026-12-04T10:15:00Z"), Some("2026-12-04T11:00:00Z")),
                now
            )
            .unwrap(),
            (at("2026-12-04T10:00:00Z"), at("2026-12-04T11:00:00Z"))
        );
        assert!(stats_window(
            &query(Some("2026-12-04T11:00:00Z"), Some("2026-12-04T10:00:00Z")),
            now
        )
        .is_err());
        assert!(stats_window(&query(Some("2020-01-01T00:00:00Z"), None), now).is_err());
    }
}
