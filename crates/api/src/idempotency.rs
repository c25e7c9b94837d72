//! `Idempotency-Key` (seed "Idempotency"): every POST route runs through [`run`], so the first
//! successful response of a POST is stored per scope (the caller's environment, or the admin
//! scope) and key and replayed for later requests with the same key, path and body (the body's
//! SHA-256; another path or body with the key answers 409 `idempotency_key_reused`). Concurrent
//! requests with one key wait for the first to finish and replay it; if it takes too long they
//! get 409. Failed requests free the key, so a client can retry them for real. Responses that
//! carry a secret (new API keys) are stored sealed with the secret encryption key.
//!
//! The object a keyed POST creates gets its id from the key's claim ([`NewObject`]), the same on
//! every try: when a try committed but its answer could not be stored (the database went away
//! in between) and a later try takes the stale claim over, that try finds the object by its id
//! and answers with it instead of creating a second one.

use std::borrow::Cow;
use std::future::Future;
use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage as _, HttpRequest, HttpResponse};
use octohooks_db::idempotency::{self, FirstUse, KeyState};
use octohooks_db::pool;
use uuid::Uuid;

use crate::error::{ApiError, ProblemCode};

/// What a sealed reply is bound to: it opens as a reply only, never as an endpoint's secret.
const REPLY_OWNER: &str = "idempotent-reply";
use crate::state::AppState;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on replayed responses.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long keys are kept (at least; a janitor removes older ones).
pub const RETENTION_SECS: i64 = 48 * 3600;
/// A claim older than this belongs to a request that died; it may be taken over. Far longer than
/// any request may run (statement timeout, pool waits), so a live request is never overtaken.
const STALE_CLAIM_SECS: i64 = 300;
/// How long a concurrent request waits for the first one before answering 409.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);

/// The idempotency scope of the admin routes, which belong to no environment. No environment
/// has this id: ids are version 7 UUIDs.
pub const ADMIN_SCOPE: Uuid = Uuid::nil();

/// The object a POST may create: the id to give it, the same on every try of one key, and
/// whether an earlier try held the key and may have created it already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewObject {
    /// The new object's id.
    pub id: Uuid,
    /// An earlier try of the key died without storing its answer: look for the object first.
    pub resumed: bool,
}

impl NewObject {
    /// An object of a request without a key: nothing came before it.
    fn fresh() -> Self {
        Self {
            id: octohooks_domain::new_id(),
            resumed: false,
        }
    }
}

/// A JSON response (or an empty one) that can be stored and replayed.
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// JSON body; empty for `204`.
    pub body: Vec<u8>,
    /// The body carries a secret shown once (an API key): it is stored sealed.
    pub secret: bool,
}

impl Reply {
    /// Serialises `value` with `status`.
    pub fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Result<Self, ApiError> {
        Ok(Self {
            status,
            body: serde_json::to_vec(value).map_err(|err| ApiError::Internal(err.to_string()))?,
            secret: false,
        })
    }

    /// Like [`Reply::json`] for a body that holds a secret shown once.
    pub fn json_with_secret<T: serde::Serialize>(
        status: StatusCode,
        value: &T,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            secret: true,
            ..Self::json(status, value)?
        })
    }

    /// A response without a body, such as `204 No Content`.
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            body: Vec::new(),
            secret: false,
        }
    }

    /// The bytes kept for replays: sealed when the body holds a secret.
    fn stored_body(&self, state: &AppState) -> Result<Cow<'_, [u8]>, ApiError> {
        if !self.secret {
            return Ok(Cow::Borrowed(&self.body));
        }
        let text = std::str::from_utf8(&self.body)
            .map_err(|err| ApiError::Internal(format!("reply body: {err}")))?;
        let sealed = state
            .settings
            .sealer
            .seal(text, REPLY_OWNER)
            .map_err(|err| ApiError::Internal(format!("sealing a reply: {err}")))?;
        Ok(Cow::Owned(sealed.into_bytes()))
    }

    /// A stored reply as it is replayed: a sealed body is opened (plain JSON comes back as it
    /// is, since it never starts with the sealing prefix).
    fn from_stored(
        state: &AppState,
        status: StatusCode,
        stored: Vec<u8>,
    ) -> Result<Self, ApiError> {
        let body = match String::from_utf8(stored) {
            Ok(text) => state
                .settings
                .sealer
                .open(&text, REPLY_OWNER)
                .map_err(|err| ApiError::Internal(format!("opening a stored reply: {err}")))?
                .into_bytes(),
            Err(not_text) => not_text.into_bytes(),
        };
        Ok(Self {
            status,
            body,
            secret: false,
        })
    }

    fn into_response(self, replayed: bool) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if !self.body.is_empty() {
            response.insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")));
        }
        if replayed {
            response.insert_header((REPLAYED_HEADER, HeaderValue::from_static("true")));
        }
        response.body(self.body)
    }
}

/// Runs `work` once per idempotency key of `scope` (the caller's environment id, or
/// [`ADMIN_SCOPE`]), or every time when the request has none. Once the key is claimed, the work and the storing of its response run in a task of their own, so that a
/// client that hangs up cannot leave an object created with no response stored for its retry.
pub async fn run<F, Fut>(
    state: web::Data<AppState>,
    scope: Uuid,
    req: &HttpRequest,
    work: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(NewObject) -> Fut + 'static,
    Fut: Future<Output = Result<Reply, ApiError>> + 'static,
{
    let Some(key) = key(req)? else {
        return Ok(work(NewObject::fresh()).await?.into_response(false));
    };
    let request = FirstUse {
        request_path: req.path().to_owned(),
        fingerprint: Some(
            req.extensions_mut()
                .remove::<BodyFingerprint>()
                .map_or_else(|| fingerprint(&[]), |body| body.0),
        ),
    };
    let started = Instant::now();
    let claim = loop {
        let held = {
            let mut conn = pool::connection(&state.db).await?;
            idempotency::acquire(&mut conn, scope, &key, &request, STALE_CLAIM_SECS).await?
        };
        match held {
            KeyState::Acquired(claim) => break claim,
            KeyState::Completed {
                first,
                status_code,
                body,
            } => {
                ensure_same_request(&first, &request)?;
                let status = StatusCode::from_u16(status_code).unwrap_or(StatusCode::OK);
                return Ok(Reply::from_stored(&state, status, body)?.into_response(true));
            }
            KeyState::InProgress { first } => {
                ensure_same_request(&first, &request)?;
                if started.elapsed() > WAIT_FOR_FIRST {
                    return Err(ApiError::Conflict {
                        code: ProblemCode::IdempotencyInProgress,
                        detail: "a request with this Idempotency-Key is still being processed"
                            .into(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    };
    let owner = claim.owner;
    let object = NewObject {
        id: claim.object_id,
        resumed: claim.resumed,
    };
    let task = actix_web::rt::spawn(async move {
        let outcome = work(object).await;
        let stored = match &outcome {
            Ok(reply) if reply.status.is_success() => Some(reply.stored_body(&state)?),
            _ => None,
        };
        match (&outcome, stored) {
            (Ok(reply), Some(body)) => {
                store_reply(&state, scope, &key, owner, reply.status.as_u16(), &body).await;
            }
            _ => {
                let mut conn = pool::connection(&state.db).await?;
                idempotency::release(&mut conn, scope, &key, owner).await?;
            }
        }
        outcome
    });
    let reply = task
        .await
        .map_err(|err| ApiError::Internal(format!("idempotent request task: {err}")))??;
    Ok(reply.into_response(false))
}

/// Pauses between tries of storing a reply.
const STORE_RETRIES: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(250),
    Duration::from_secs(1),
];

/// Stores the reply of a request that succeeded, trying again when the database fails for a
/// moment: the work is done, and a retry of the key must replay its answer, not find the key
/// still claimed. If every try fails the reply is still sent (the caller has its answer); the
/// key's claim then lapses and a later retry with the key runs again.
async fn store_reply(
    state: &AppState,
    scope: Uuid,
    key: &str,
    owner: Uuid,
    status: u16,
    body: &[u8],
) {
    let mut pauses = STORE_RETRIES.iter();
    loop {
        let stored = match pool::connection(&state.db).await {
            Ok(mut conn) => idempotency::complete(&mut conn, scope, key, owner, status, body).await,
            Err(err) => Err(err),
        };
        let Err(err) = stored else { return };
        let Some(pause) = pauses.next() else {
            tracing::error!(error = %err, "could not store an idempotent reply; a retry with its key will run again");
            return;
        };
        tracing::warn!(error = %err, "storing an idempotent reply failed; trying again");
        tokio::time::sleep(*pause).await;
    }
}

fn key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|key| !key.is_empty() && key.len() <= 256)
        .ok_or_else(|| {
            ApiError::invalid(
                "Idempotency-Key",
                "must be 1 to 256 visible ASCII characters",
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// The SHA-256 of a request body with an `Idempotency-Key`, put into the request's extensions
/// by the body extractor (a POST without a body has none: the empty body's is used).
#[derive(Debug, Clone)]
pub struct BodyFingerprint(pub Vec<u8>);

/// SHA-256 of `body`: the same key may only be used again with the very same bytes.
pub fn fingerprint(body: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, body)
        .as_ref()
        .to_vec()
}

/// A key is replayed only for the request it was first used for: same path and, where the
/// first use was fingerprinted, the same body.
fn ensure_same_request(first: &FirstUse, current: &FirstUse) -> Result<(), ApiError> {
    let same_body = match (&first.fingerprint, &current.fingerprint) {
        (Some(first), Some(current)) => first == current,
        _ => true,
    };
    if first.request_path == current.request_path && same_body {
        Ok(())
    } else {
        Err(ApiError::Conflict {
            code: ProblemCode::IdempotencyKeyReused,
            detail: "this Idempotency-Key was already used for a different request".into(),
        })
    }
}
