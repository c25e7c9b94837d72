//! The client certificate of an endpoint (mutual TLS): deliveries to it present this chain to a
//! receiver that asks for one. The private key is sealed at rest like the signing secrets and
//! never shown again; the certificate and its fingerprint are.

use actix_web::{web, HttpResponse};
use octohooks_db::client_identities as store;
use octohooks_db::pool;
use octohooks_domain::client_identity::{self, ClientIdentity};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::find_endpoint;
use crate::body::JsonBody;
use crate::error::{ApiError, Problem};
use crate::scope::ScopedApp;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/applications/{app}/endpoints/{endpoint}/client-certificate",
        web::get().to(get_client_certificate),
    )
    .route(
        "/applications/{app}/endpoints/{endpoint}/client-certificate",
        web::put().to(set_client_certificate),
    )
    .route(
        "/applications/{app}/endpoints/{endpoint}/client-certificate",
        web::delete().to(delete_client_certificate),
    );
}

/// `PUT …/client-certificate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientCertificateIn {
    /// PEM: the client's certificate first, then any intermediates.
    pub certificate: String,
    /// PEM private key of the first certificate (PKCS#8, PKCS#1 or SEC1; RSA, ECDSA P-256/P-384
    /// or ed25519). Stored sealed and never shown again.
    pub private_key: String,
}

/// An endpoint's client certificate.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCertificateOut {
    /// The PEM chain deliveries present.
    pub certificate: String,
    /// SHA-256 of the first certificate, colon-separated hex.
    pub fingerprint_sha256: String,
}

impl ClientCertificateOut {
    fn of(certificate: String) -> Result<Self, ApiError> {
        let fingerprint_sha256 = client_identity::leaf_fingerprint(&certificate)
            .ok_or_else(|| ApiError::Internal("stored client certificate unreadable".into()))?;
        Ok(Self {
            certificate,
            fingerprint_sha256,
        })
    }
}

/// The client certificate deliveries to the endpoint present; 404 when it has none.
#[utoipa::path(get, path = "/api/v1/applications/{app}/endpoints/{endpoint}/client-certificate",
    tag = "endpoints",
    params(("app" = String, Path, description = "Application id or uid"),
        ("endpoint" = String, Path, description = "Endpoint id or uid")),
    security(("apiKey" = [])),
    responses((status = 200, body = ClientCertificateOut), (status = 404, body = Problem)))]
pub async fn get_client_certificate(
    scoped: ScopedApp,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let endpoint = find_endpoint(&mut conn, scoped.app, &path.1).await?;
    let certificate = store::certificate(&mut conn, &endpoint)
        .await?
        .ok_or(ApiError::NotFound("client certificate"))?;
    Ok(HttpResponse::Ok().json(ClientCertificateOut::of(certificate)?))
}

/// Sets the client certificate (and key) that deliveries to the endpoint present to receivers
/// that ask for one (mutual TLS); replaces any earlier one. The pair is checked first: a key
/// that does not belong to the first certificate answers 422 and changes nothing.
#[utoipa::path(put, path = "/api/v1/applications/{app}/endpoints/{endpoint}/client-certificate",
    tag = "endpoints", request_body = ClientCertificateIn,
    params(("app" = String, Path, description = "Application id or uid"),
        ("endpoint" = String, Path, description = "Endpoint id or uid")),
    security(("apiKey" = [])),
    responses((status = 200, body = ClientCertificateOut), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn set_client_certificate(
    scoped: ScopedApp,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    JsonBody(body): JsonBody<ClientCertificateIn>,
) -> Result<HttpResponse, ApiError> {
    let identity = ClientIdentity::parse(&body.certificate, &body.private_key)?;
    let mut conn = pool::connection(&state.db).await?;
    let endpoint = find_endpoint(&mut conn, scoped.app, &path.1).await?;
    let sealed = state
        .settings
        .sealer
        .seal(&body.private_key, &client_identity::key_owner(endpoint.id))
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    store::set(&mut conn, &endpoint, Some((&body.certificate, &sealed))).await?;
    let out = ClientCertificateOut {
        certificate: body.certificate,
        fingerprint_sha256: identity.fingerprint(),
    };
    Ok(HttpResponse::Ok().json(out))
}

/// Removes the client certificate: deliveries present none again.
#[utoipa::path(delete, path = "/api/v1/applications/{app}/endpoints/{endpoint}/client-certificate",
    tag = "endpoints",
    params(("app" = String, Path, description = "Application id or uid"),
        ("endpoint" = String, Path, description = "Endpoint id or uid")),
    security(("apiKey" = [])),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_client_certificate(
    scoped: ScopedApp,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let endpoint = find_endpoint(&mut conn, scoped.app, &path.1).await?;
    store::set(&mut conn, &endpoint, None).await?;
    Ok(HttpResponse::NoContent().finish())
}
