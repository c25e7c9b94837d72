//! The outgoing HTTP client: hyper 1 with rustls (ring provider, webpki roots, certificates
//! always verified), pooled keep-alive connections, no redirects followed, a time limit on the
//! whole exchange and a cap on how much of a response is read.
//!
//! The SSRF guard sits in the resolver: hyper connects only to addresses that the guard let
//! through, so there is no window between checking a name and connecting to it. IP-literal
//! URLs bypass resolution and are checked before the request is made.
//!
//! Through a proxy ([`OutboundProxy`]) the same holds: the dispatcher resolves and checks the
//! receiver's name itself and asks the proxy (HTTP `CONNECT`) for the address it checked, never
//! for the name, so the proxy cannot be steered elsewhere by a second lookup; TLS still runs end
//! to end with the receiver, verified against its name. Extra certificate authorities
//! (`extra_ca_file`) are trusted beside the public roots.
//!
//! Endpoints with a client certificate (mutual TLS) get a client of their own ([`tls`]).

mod dial;
mod tls;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::Request;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use octohooks_domain::destination::DestinationPolicy;
use octohooks_platform::outbound::OutboundProxy;

use dial::Dialer;
use tls::IdentityClients;
pub use tls::StoredIdentity;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type HyperClient = Client<HttpsConnector<Dialer>, Full<Bytes>>;

/// Most bytes of a response body that are read and stored.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The response of one attempt, or why none came.
#[derive(Debug)]
pub struct Exchange {
    /// HTTP status; 0 when no response came.
    pub status: u16,
    /// Up to [`MAX_RESPONSE_BYTES`] of the body, or the error.
    pub body: String,
    /// Seconds asked for by `Retry-After`, if given as seconds.
    pub retry_after: Option<Duration>,
    /// Time from sending to the end of reading.
    pub duration: Duration,
}

impl Exchange {
    /// A 2xx answer: the webhook was delivered.
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The shared client.
#[derive(Clone)]
pub struct WebhookClient {
    client: HyperClient,
    with_identity: Arc<IdentityClients>,
    policy: Arc<DestinationPolicy>,
    timeout: Duration,
}

/// Where and how deliveries go out, beside the destination rule and the time limit.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    /// The proxy every delivery goes through, if any.
    pub proxy: Option<OutboundProxy>,
    /// A PEM file of extra certificate authorities.
    pub extra_ca_file: Option<std::path::PathBuf>,
}

/// Why the client could not be built (a setting that does not work).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(String);

/// A pooled hyper client over `dialer` with this TLS configuration.
fn hyper_client(dialer: Dialer, config: rustls::ClientConfig) -> HyperClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(dialer);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .build(https)
}

impl WebhookClient {
    /// Builds the client with the given destination policy, per-attempt time limit and way out.
    pub fn new(
        policy: DestinationPolicy,
        timeout: Duration,
        outbound: &Outbound,
        sealer: Arc<octohooks_domain::sealing::Sealer>,
    ) -> Result<Self, ClientError> {
        let policy = Arc::new(policy);
        let dialer = Dialer::new(policy.clone(), timeout, outbound.proxy.as_ref())
            .map_err(|err| ClientError(format!("proxy_url: {err}")))?;
        let roots = Arc::new(tls::roots(outbound.extra_ca_file.as_deref())?);
        let client = hyper_client(dialer.clone(), tls::anonymous(roots.clone())?);
        Ok(Self {
            client,
            with_identity: Arc::new(IdentityClients::new(roots, dialer, sealer)),
            policy,
            timeout,
        })
    }

    /// POSTs `body` to `url` with `headers`, presenting `identity` if the endpoint has a client
    /// certificate. Never fails: a missing response is an exchange with status 0 whose body says
    /// what happened.
    pub async fn post(
        &self,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
        identity: Option<&StoredIdentity<'_>>,
    ) -> Exchange {
        let started = Instant::now();
        let client = match identity {
            None => Ok(self.client.clone()),
            Some(identity) => self.with_identity.client(identity),
        };
        let outcome = match client {
            Ok(client) => {
                tokio::time::timeout(self.timeout, self.exchange(&client, url, headers, body)).await
            }
            Err(why) => Ok(Err(why)),
        };
        let duration = started.elapsed();
        match outcome {
            Ok(Ok((status, body, retry_after))) => Exchange {
                status,
                body,
                retry_after,
                duration,
            },
            Ok(Err(error)) => Exchange {
                status: 0,
                body: error,
                retry_after: None,
                duration,
            },
            Err(_) => Exchange {
                status: 0,
                body: format!("timed out after {} ms", self.timeout.as_millis()),
                retry_after: None,
                duration,
            },
        }
    }

    async fn exchange(
        &self,
        client: &HyperClient,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<(u16, String, Option<Duration>), String> {
        let uri: hyper::Uri = url.parse().map_err(|err| format!("invalid URL: {err}"))?;
        if let Some(host) = uri.host() {
            let literal = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = literal.parse::<IpAddr>() {
                self.policy
                    .check(ip)
                    .map_err(|reason| format!("destination refused: {ip} is {reason}"))?;
            }
        }
        let mut request = Request::post(uri)
            .body(Full::new(body))
            .map_err(|err| format!("invalid request: {err}"))?;
        *request.headers_mut() = headers;
        let response = client.request(request).await.map_err(describe_error)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = response.into_body();
        let mut read = Vec::new();
        while read.len() < MAX_RESPONSE_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        let room = MAX_RESPONSE_BYTES - read.len();
                        read.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                Some(Err(err)) => {
                    tracing::debug!(error = %err, "response body ended with an error");
                    break;
                }
                None => break,
            }
        }
        Ok((
            status,
            // Postgres text cannot hold NUL: binary answers are stored with it replaced.
            String::from_utf8_lossy(&read).replace('\0', "\u{FFFD}"),
            retry_after,
        ))
    }
}

fn describe_error(err: hyper_util::client::legacy::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Inserts a header built from trusted parts; invalid values are skipped with a log line.
pub fn put_header(headers: &mut HeaderMap, name: &str, value: &str) {
    match (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        (Ok(name), Ok(value)) => {
            headers.insert(name, value);
        }
        _ => tracing::warn!(header = name, "skipping a header that is not valid"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extra_authority_file_that_holds_no_certificate_stops_the_client() {
        let policy = DestinationPolicy {
            allow_private: false,
            allow_list: Vec::new(),
        };
        let empty =
            std::env::temp_dir().join(format!("octohooks-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for path in [empty.clone(), "/nonexistent/authorities.pem".into()] {
            let outbound = Outbound {
                proxy: None,
                extra_ca_file: Some(path.clone()),
            };
            let refused = WebhookClient::new(
                policy.clone(),
                Duration::from_secs(1),
                &outbound,
                Arc::new(octohooks_domain::sealing::Sealer::plaintext()),
            );
            let message = refused.err().map(|err| err.to_string()).unwrap_or_default();
            assert!(message.starts_with("extra_ca_file"), "{path:?}: {message}");
        }
        let _ = std::fs::remove_file(empty);
        let plaintext = Arc::new(octohooks_domain::sealing::Sealer::plaintext());
        assert!(WebhookClient::new(
            policy,
            Duration::from_secs(1),
            &Outbound::default(),
            plaintext
        )
        .is_ok());
    }
}
