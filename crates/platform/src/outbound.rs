//! How deliveries leave a locked-down network: an HTTP proxy that every delivery goes through
//! (`proxy_url`), and receivers' private certificate authorities (`extra_ca_file`).

use base64::Engine as _;

/// An HTTP proxy reached with `CONNECT`. Its own address is trusted (the operator chose it);
/// the destination rule still applies to every target behind it.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundProxy {
    /// `http://host:port` of the proxy, without credentials.
    pub address: String,
    /// `Basic …` for `Proxy-Authorization`, when the URL carried a user.
    pub authorization: Option<String>,
}

impl std::fmt::Debug for OutboundProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundProxy")
            .field("address", &self.address)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl OutboundProxy {
    /// Reads `http://[user:password@]host:port`; an empty text is no proxy.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let url = url::Url::parse(text).map_err(|_| "must be a URL such as http://proxy:3128")?;
        if url.scheme() != "http" {
            return Err("must start with http:// (the proxy is reached with CONNECT)".into());
        }
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or("must name the proxy's host")?;
        let port = url
            .port_or_known_default()
            .ok_or("must name the proxy's port")?;
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err("must be the proxy's address only, without a path".into());
        }
        let authorization = (!url.username().is_empty()).then(|| {
            let user = percent_decoded(url.username());
            let password = percent_decoded(url.password().unwrap_or_default());
            let pair = format!("{user}:{password}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        Ok(Some(Self {
            address: format!("http://{host}:{port}"),
            authorization,
        }))
    }
}

/// Userinfo as the URL spells it, percent-escapes decoded (`+` and `&` stay themselves).
fn percent_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_url_gives_its_address_and_credentials() {
        assert_eq!(OutboundProxy::parse(" ").unwrap(), None);
        let plain = OutboundProxy::parse("http://proxy.internal:3128")
            .unwrap()
            .unwrap();
        assert_eq!(plain.address, "http://proxy.internal:3128");
        assert_eq!(plain.authorization, None);
        let with_user = OutboundProxy::parse("http://hooks:s%40cret@10.0.0.5:8080/")
            .unwrap()
            .unwrap();
        assert_eq!(with_user.address, "http://10.0.0.5:8080");
        // base64("hooks:s@cret")
        assert_eq!(
            with_user.authorization.as_deref(),
            Some("Basic aG9va3M6c0BjcmV0")
        );
        assert!(!format!("{with_user:?}").contains("aG9va3M6"));
        let symbols = OutboundProxy::parse("http://hooks:a+b&c@proxy.internal/")
            .unwrap()
            .unwrap();
        assert_eq!(symbols.address, "http://proxy.internal:80");
        // base64("hooks:a+b&c")
        assert_eq!(
            symbols.authorization.as_deref(),
            Some("Basic aG9va3M6YStiJmM=")
        );
        for bad in [
            "proxy:3128",
            "https://proxy:3128",
            "http://proxy:3128/path",
            "socks5://proxy:1080",
        ] {
            assert!(OutboundProxy::parse(bad).is_err(), "{bad}");
        }
    }
}
