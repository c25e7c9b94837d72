//! The API's one error type and its mapping to HTTP: RFC 9457 problem documents with a stable
//! `code`. Internal causes are logged once here and never leave the process.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use octohooks_db::DbError;
use octohooks_domain::schema::Violation;
use octohooks_domain::validate::ValidationError;
use serde::Serialize;

/// The stable machine-readable kinds of error (`code` of the problem document). Clients
/// branch on these, so a kind is never renamed; the OpenAPI document lists them as an enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// The body is empty or not JSON.
    InvalidJson,
    /// The body nests too deeply.
    JsonTooDeep,
    /// The body could not be read.
    InvalidBody,
    /// Missing, unknown or revoked credentials.
    Unauthorized,
    /// Valid credentials that do not open this route or object (a portal token's scope).
    Forbidden,
    /// No such object (or route).
    NotFound,
    /// A uid or name is taken.
    Conflict,
    /// The message's payload was expunged: it cannot be sent again.
    MessageExpunged,
    /// Another request with this `Idempotency-Key` is still running.
    IdempotencyInProgress,
    /// This `Idempotency-Key` was used for another request.
    IdempotencyKeyReused,
    /// The body or payload is too large.
    PayloadTooLarge,
    /// A value is invalid; `detail` names the field.
    ValidationError,
    /// The payload does not match its event type's enforced schema; `errors` lists where.
    SchemaViolation,
    /// Too many requests; see `Retry-After`.
    RateLimited,
    /// An unexpected failure.
    InternalError,
    /// A dependency is unavailable; see `Retry-After`.
    ServiceUnavailable,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid credentials.
    #[error("missing, unknown or revoked credentials")]
    Unauthorized,
    /// The token is valid but its scope does not reach this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The object does not exist in the caller's environment.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request clashes with stored state.
    #[error("{detail}")]
    Conflict {
        /// Stable code.
        code: ProblemCode,
        /// Human explanation.
        detail: String,
    },
    /// A value is invalid.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The payload does not match the enforced schema of its event type.
    #[error("payload does not match the schema of event type {event_type} (version {version})")]
    SchemaViolation {
        /// The event type.
        event_type: String,
        /// The schema version checked (the latest).
        version: u32,
        /// The first violations.
        errors: Vec<Violation>,
    },
    /// The request could not be read.
    #[error("{detail}")]
    BadRequest {
        /// Stable code.
        code: ProblemCode,
        /// Human explanation.
        detail: String,
    },
    /// The body or the payload is larger than allowed.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The environment sent more requests than its rate limit allows; retry after this many
    /// seconds.
    #[error("rate limit exceeded; retry in {0} s")]
    RateLimited(u64),
    /// A dependency is unavailable; retry later.
    #[error("service temporarily unavailable: {0}")]
    Unavailable(String),
    /// Anything else. The cause is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 with `code`.
    pub fn bad_request(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            detail: detail.into(),
        }
    }

    /// A 422 naming `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(ValidationError::new(field, message))
    }

    fn code(&self) -> ProblemCode {
        match self {
            Self::Unauthorized => ProblemCode::Unauthorized,
            Self::Forbidden(_) => ProblemCode::Forbidden,
            Self::NotFound(_) => ProblemCode::NotFound,
            Self::Conflict { code, .. } | Self::BadRequest { code, .. } => *code,
            Self::Validation(_) => ProblemCode::ValidationError,
            Self::SchemaViolation { .. } => ProblemCode::SchemaViolation,
            Self::PayloadTooLarge(_) => ProblemCode::PayloadTooLarge,
            Self::RateLimited(_) => ProblemCode::RateLimited,
            Self::Unavailable(_) => ProblemCode::ServiceUnavailable,
            Self::Internal(_) => ProblemCode::InternalError,
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Unavailable(_) => "a dependency is temporarily unavailable; retry shortly".into(),
            Self::Internal(_) => "an internal error occurred".into(),
            other => other.to_string(),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Unavailable(cause) => Self::Unavailable(cause),
            DbError::Query(diesel::result::Error::NotFound) => Self::NotFound("object"),
            err if err.is_unique_violation() => Self::Conflict {
                code: ProblemCode::Conflict,
                detail: "an object with this uid already exists".into(),
            },
            DbError::Query(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("invalid byte sequence")
                    || info.message().contains("out of range") =>
            {
                Self::Validation(ValidationError::new(
                    "request",
                    "a value cannot be stored (a NUL character, or a time out of range)",
                ))
            }
            err if err.is_transient() => Self::Unavailable(err.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// The RFC 9457 body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `code` carries the machine-readable kind.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The HTTP reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, naming the field at fault where there is one.
    pub detail: String,
    /// Stable machine-readable error code.
    pub code: ProblemCode,
    /// With `schema_violation`: where the payload breaks the schema (at most five).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<SchemaViolationOut>>,
}

/// One place where a payload breaks its event type's schema.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SchemaViolationOut {
    /// JSON Pointer (RFC 6901) into the payload; `""` for the payload as a whole.
    pub pointer: String,
    /// What is wrong there.
    pub reason: String,
}

/// Builds a problem response outside the error type (unknown routes, framework errors).
pub fn problem_response(status: StatusCode, code: ProblemCode, detail: String) -> HttpResponse {
    problem_with_errors(status, code, detail, None)
}

fn problem_with_errors(
    status: StatusCode,
    code: ProblemCode,
    detail: String,
    errors: Option<Vec<SchemaViolationOut>>,
) -> HttpResponse {
    let body = Problem {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        code,
        errors,
    };
    let mut response = HttpResponse::build(status);
    response.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    ));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
    }
    response.body(serde_json::to_vec(&body).unwrap_or_default())
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Validation(_) | Self::SchemaViolation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(cause) => tracing::error!(cause = %cause, "request failed"),
            Self::Unavailable(cause) => tracing::warn!(cause = %cause, "dependency unavailable"),
            _ => {}
        }
        let errors = match self {
            Self::SchemaViolation { errors, .. } => Some(
                errors
                    .iter()
                    .map(|violation| SchemaViolationOut {
                        pointer: violation.pointer.clone(),
                        reason: violation.reason.clone(),
                    })
                    .collect(),
            ),
            _ => None,
        };
        let mut response =
            problem_with_errors(self.status_code(), self.code(), self.detail(), errors);
        if let Self::RateLimited(secs) = self {
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if matches!(self, Self::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
