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
use hyper::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use octohooks_domain::destination::DestinationPolicy;
use octohooks_platform::outbound::OutboundProxy;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpStream;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

/// How the client reaches receivers: directly, or through a proxy.
#[derive(Clone)]
enum Dialer {
    Direct(HttpConnector<GuardedResolver>),
    Proxied(GuardedTunnel),
}

impl Service<Uri> for Dialer {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Self::Direct(direct) => direct.poll_ready(cx).map_err(Into::into),
            Self::Proxied(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        match self {
            Self::Direct(direct) => {
                let connecting = direct.call(dst);
                Box::pin(async move { connecting.await.map_err(Into::into) })
            }
            Self::Proxied(tunnel) => Box::pin(tunnel.clone().connect(dst)),
        }
    }
}

/// A `CONNECT` tunnel through the proxy to an address the destination rule let through.
#[derive(Clone)]
struct GuardedTunnel {
    resolver: GuardedResolver,
    tunnel: Tunnel<HttpConnector>,
}

impl GuardedTunnel {
    fn new(
        proxy: &OutboundProxy,
        resolver: GuardedResolver,
        timeout: Duration,
    ) -> Result<Self, BoxError> {
        let mut to_proxy = HttpConnector::new();
        to_proxy.set_nodelay(true);
        to_proxy.set_connect_timeout(Some(timeout));
        to_proxy.set_keepalive(Some(Duration::from_secs(60)));
        let mut tunnel = Tunnel::new(proxy.address.parse()?, to_proxy);
        if let Some(authorization) = &proxy.authorization {
            tunnel = tunnel.with_auth(HeaderValue::from_str(authorization)?);
        }
        Ok(Self { resolver, tunnel })
    }

    async fn connect(mut self, dst: Uri) -> Result<TokioIo<TcpStream>, BoxError> {
        let host = dst.host().ok_or("the URL has no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = dst
            .port_u16()
            .unwrap_or(if dst.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => {
                self.resolver
                    .policy
                    .check(ip)
                    .map_err(|reason| format!("destination refused: {ip} is {reason}"))?;
                vec![SocketAddr::new(ip, port)]
            }
            Err(_) => {
                let name: Name = host.parse()?;
                let allowed = self.resolver.call(name).await?;
                allowed
                    .map(|addr| SocketAddr::new(addr.ip(), port))
                    .collect()
            }
        };
        // Each allowed address in turn, as a direct connection would try them.
        let mut last_error: BoxError = "the name resolves to nothing".into();
        for address in addresses {
            let target: Uri = format!("http://{address}").parse()?;
            std::future::poll_fn(|cx| self.tunnel.poll_ready(cx)).await?;
            match self.tunnel.call(target).await {
                Ok(stream) => return Ok(stream),
                Err(err) => last_error = Box::new(err),
            }
        }
        Err(last_error)
    }
}

/// The shared client.
#[derive(Clone)]
pub struct WebhookClient {
    client: Client<HttpsConnector<Dialer>, Full<Bytes>>,
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

/// The public roots and, when given, the authorities of `extra_ca_file`.
fn tls_config(
    extra_ca_file: Option<&std::path::Path>,
) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca_file {
        let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect())
            .map_err(|err| ClientError(format!("extra_ca_file {}: {err}", path.display())))?;
        let (added, _) = roots.add_parsable_certificates(certificates);
        if added == 0 {
            return Err(ClientError(format!(
                "extra_ca_file {}: no usable certificate",
                path.display()
            )));
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .map_err(|err| ClientError(err.to_string()))
}

impl WebhookClient {
    /// Builds the client with the given destination policy, per-attempt time limit and way out.
    pub fn new(
        policy: DestinationPolicy,
        timeout: Duration,
        outbound: &Outbound,
    ) -> Result<Self, ClientError> {
        let policy = Arc::new(policy);
        let resolver = GuardedResolver {
            policy: policy.clone(),
        };
        let dialer = match &outbound.proxy {
            Some(proxy) => Dialer::Proxied(
                GuardedTunnel::new(proxy, resolver, timeout)
                    .map_err(|err| ClientError(format!("proxy_url: {err}")))?,
            ),
            None => {
                let mut http = HttpConnector::new_with_resolver(resolver);
                http.enforce_http(false);
                http.set_nodelay(true);
                http.set_connect_timeout(Some(timeout));
                http.set_keepalive(Some(Duration::from_secs(60)));
                Dialer::Direct(http)
            }
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(outbound.extra_ca_file.as_deref())?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(dialer);
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
            let refused = WebhookClient::new(policy.clone(), Duration::from_secs(1), &outbound);
            let message = refused.err().map(|err| err.to_string()).unwrap_or_default();
            assert!(message.starts_with("extra_ca_file"), "{path:?}: {message}");
        }
        let _ = std::fs::remove_file(empty);
        assert!(WebhookClient::new(policy, Duration::from_secs(1), &Outbound::default()).is_ok());
    }
}
