//! The outgoing HTTP client: hyper 1 with rustls (ring provider, webpki roots, certificates
//! always verified), pooled keep-alive connections, no redirects followed, a time limit on the
//! whole exchange and a cap on how much of a response is read.
//!
//! The SSRF guard sits in the resolver: hyper connects only to addresses that the guard let
//! through, so there is no window between checking a name and connecting to it. IP-literal
//! URLs bypass resolution and are checked before the request is made.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::Request;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use octohooks_domain::destination::DestinationPolicy;

/// Most bytes of a response body that are read and stored.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Resolves names and drops every address the policy forbids.
#[derive(Clone)]
pub struct GuardedResolver {
    policy: Arc<DestinationPolicy>,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match policy.check(addr.ip()) {
                    Ok(()) => true,
                    Err(reason) => {
                        refusal.get_or_insert(reason);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let reason = refusal.unwrap_or("an address that cannot be reached");
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("destination refused: {host} resolves to {reason}"),
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

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
    client: Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>,
    policy: Arc<DestinationPolicy>,
    timeout: Duration,
}

impl WebhookClient {
    /// Builds the client with the given destination policy and per-attempt time limit.
    pub fn new(policy: DestinationPolicy, timeout: Duration) -> Result<Self, rustls::Error> {
        let policy = Arc::new(policy);
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            policy: policy.clone(),
        });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .build(https);
        Ok(Self {
            client,
            policy,
            timeout,
        })
    }

    /// POSTs `body` to `url` with `headers`. Never fails: a missing response is an exchange
    /// with status 0 whose body says what happened.
    pub async fn post(&self, url: &str, headers: HeaderMap, body: Bytes) -> Exchange {
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.timeout, self.exchange(url, headers, body)).await;
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
        let response = self.client.request(request).await.map_err(describe_error)?;
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
