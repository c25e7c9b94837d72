//! How a delivery's connection is made: directly, through the resolver that drops every
//! address the destination rule forbids, or through an HTTP `CONNECT` proxy to an address that
//! rule let through.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::Uri;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use octohooks_domain::destination::DestinationPolicy;
use octohooks_platform::outbound::OutboundProxy;
use tokio::net::TcpStream;
use tower_service::Service;

use super::BoxError;

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

/// How the client reaches receivers: directly, or through a proxy.
#[derive(Clone)]
pub(super) enum Dialer {
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
pub(super) struct GuardedTunnel {
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

impl Dialer {
    /// The dialer of `proxy`, or a direct one, both holding to `policy`.
    pub(super) fn new(
        policy: Arc<DestinationPolicy>,
        timeout: Duration,
        proxy: Option<&OutboundProxy>,
    ) -> Result<Self, BoxError> {
        let resolver = GuardedResolver { policy };
        Ok(match proxy {
            Some(proxy) => Self::Proxied(GuardedTunnel::new(proxy, resolver, timeout)?),
            None => {
                let mut http = HttpConnector::new_with_resolver(resolver);
                http.enforce_http(false);
                http.set_nodelay(true);
                http.set_connect_timeout(Some(timeout));
                http.set_keepalive(Some(Duration::from_secs(60)));
                Self::Direct(http)
            }
        })
    }
}
