//! The application a request names, resolved within the caller's environment before the handler
//! runs. Handlers under `/applications/{app}` take a [`ScopedApp`] and reach the application's
//! endpoints, messages and attempts only through its [`AppScope`], which nothing but a lookup by
//! environment makes (see [`octohooks_db::scope`]).

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use octohooks_db::scope::AppScope;
use octohooks_db::{applications, DbError, Found as _, IdOrUid};
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::ApiError;
use crate::state::AppState;

/// The caller and the application of the route's `{app}` segment, one of the caller's.
#[derive(Debug, Clone, Copy)]
pub struct ScopedApp {
    /// Who asked (environment and token scope).
    pub tenant: Tenant,
    /// The application named by the route, or the environment's operational application.
    pub app: AppScope,
    /// True under `/operational-webhooks`: the endpoints are the operators' own, and their
    /// event type filter names operational events.
    pub operational: bool,
}

impl FromRequest for ScopedApp {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let tenant = Tenant::from_request(req, payload);
        let name = req.match_info().get("app").map(str::to_owned);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let tenant = tenant.await?;
            let name = name.ok_or_else(|| ApiError::Internal("route without {app}".into()))?;
            let state =
                state.ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            let app = resolve(&state, tenant.environment_id, &name).await?;
            Ok(Self {
                tenant,
                app,
                operational: false,
            })
        })
    }
}

/// The caller's application named by id or uid, through the process's lookup cache (which
/// change notices keep true across API processes); 404 when there is none.
pub(crate) async fn resolve(
    state: &AppState,
    environment_id: Uuid,
    app: &str,
) -> Result<AppScope, ApiError> {
    let load = async {
        let mut conn = octohooks_db::pool::connection(&state.db).await?;
        let found = applications::find(&mut conn, environment_id, &IdOrUid::parse(app)).await;
        Ok::<_, DbError>(found.found()?.map(|app| app.scope()))
    };
    state
        .lookups
        .application(environment_id, app, load)
        .await?
        .ok_or(ApiError::NotFound("application"))
}

/// The caller and its environment's operational application (created on first use), for the
/// routes under `/operational-webhooks`. Only API keys reach it: no portal token opens these
/// routes.
#[derive(Debug, Clone, Copy)]
pub struct OperationalApp(pub ScopedApp);

impl FromRequest for OperationalApp {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let tenant = Tenant::from_request(req, payload);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let tenant = tenant.await?;
            let state =
                state.ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            let mut conn = octohooks_db::pool::connection(&state.db).await?;
            let app = octohooks_db::operational::application(&mut conn, tenant.environment_id)
                .await?
                .scope();
            Ok(Self(ScopedApp {
                tenant,
                app,
                operational: true,
            }))
        })
    }
}
