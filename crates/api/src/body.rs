//! The JSON body extractor. It bounds the body before reading it, and tells malformed JSON
//! (400) from well-formed JSON with wrong or missing fields (422), naming the field.

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest};
use futures::future::LocalBoxFuture;
use futures::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ProblemCode};
use crate::idempotency::BodyFingerprint;

/// Largest request body accepted: a maximal payload plus its envelope.
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        let mut payload = payload.take();
        let idempotent = req
            .headers()
            .contains_key(crate::idempotency::HEADER)
            .then(|| req.clone());
        Box::pin(async move {
            if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
                return Err(too_large());
            }
            let mut body = Vec::with_capacity(declared.unwrap_or(1024).min(MAX_BODY_BYTES));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| {
                    ApiError::bad_request(
                        ProblemCode::InvalidBody,
                        "the request body could not be read",
                    )
                })?;
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            if let Some(req) = idempotent {
                req.extensions_mut()
                    .insert(BodyFingerprint(crate::idempotency::fingerprint(&body)));
            }
            parse(&body).map(JsonBody)
        })
    }
}

fn too_large() -> ApiError {
    ApiError::PayloadTooLarge(format!("the request body exceeds {MAX_BODY_BYTES} bytes"))
}

/// Parses a body, mapping serde's errors onto 400 and 422.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            ProblemCode::InvalidJson,
            "a JSON request body is required",
        ));
    }
    if octohooks_domain::validate::json_nesting_exceeds(
        body,
        octohooks_domain::validate::MAX_JSON_DEPTH,
    ) {
        return Err(ApiError::bad_request(
            ProblemCode::JsonTooDeep,
            format!(
                "the body nests deeper than {} levels",
                octohooks_domain::validate::MAX_JSON_DEPTH
            ),
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." { "body".to_owned() } else { path };
                ApiError::invalid(&field, strip_position(&inner.to_string()))
            }
            _ => ApiError::bad_request(
                ProblemCode::InvalidJson,
                format!("the body is not valid JSON: {}", inner),
            ),
        }
    })?;
    deserializer.end().map_err(|err| {
        ApiError::bad_request(
            ProblemCode::InvalidJson,
            format!("the body is not valid JSON: {err}"),
        )
    })?;
    Ok(value)
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}
