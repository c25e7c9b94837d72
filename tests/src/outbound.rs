//! The far side of a locked-down network: an HTTP `CONNECT` proxy that records what it was asked
//! to reach (and may require credentials), and an HTTPS receiver whose certificate a test's own
//! authority issued.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A running `CONNECT` proxy on 127.0.0.1.
pub struct ConnectProxy {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    targets: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    /// Starts a proxy; with `authorization`, requests without that `Proxy-Authorization` value
    /// get `407`.
    pub async fn start(authorization: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let targets = Arc::new(Mutex::new(Vec::new()));
        let recorded = targets.clone();
        let required = authorization.map(str::to_owned);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let recorded = recorded.clone();
                let required = required.clone();
                tokio::spawn(async move {
                    let _ = tunnel(client, &recorded, required.as_deref()).await;
                });
            }
        });
        Self { url, targets }
    }

    /// The `host:port` of every `CONNECT` asked for, in order.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().expect("targets").clone()
    }
}

async fn tunnel(
    client: TcpStream,
    recorded: &Mutex<Vec<String>>,
    required: Option<&str>,
) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    let mut request_line = String::new();
    client.read_line(&mut request_line).await?;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if client.read_line(&mut line).await? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("proxy-authorization") {
                authorization = Some(value.trim().to_owned());
            }
        }
    }
    let mut parts = request_line.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        return client
            .get_mut()
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            .await;
    };
    if required.is_some() && authorization.as_deref() != required {
        return client
            .get_mut()
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
            .await;
    }
    recorded.lock().expect("targets").push(target.to_owned());
    let mut server = TcpStream::connect(target).await?;
    client
        .get_mut()
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

/// An HTTPS receiver on 127.0.0.1 answering `200` to every request, recording their bodies.
pub struct TlsReceiver {
    /// `https://localhost:<port>`.
    pub base: String,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl TlsReceiver {
    /// Starts a receiver with this certificate (chain) and key, both PEM.
    pub async fn start(cert_pem: &str, key_pem: &str) -> Self {
        Self::start_with(cert_pem, key_pem, None).await
    }

    /// Starts a receiver that refuses clients without a certificate issued by the authority
    /// `client_ca_pem` (mutual TLS).
    pub async fn start_requiring_clients(
        cert_pem: &str,
        key_pem: &str,
        client_ca_pem: &str,
    ) -> Self {
        Self::start_with(cert_pem, key_pem, Some(client_ca_pem)).await
    }

    async fn start_with(cert_pem: &str, key_pem: &str, client_ca_pem: Option<&str>) -> Self {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
        let builder = match client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for ca in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    roots.add(ca.expect("client CA PEM")).expect("client CA");
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .expect("client verifier");
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(certs, key)
            .expect("server certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let recorded = bodies.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = answer(stream, &recorded).await;
                    }
                });
            }
        });
        Self {
            base: format!("https://localhost:{port}"),
            bodies,
        }
    }

    /// Bodies of the requests received so far.
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.bodies.lock().expect("bodies").clone()
    }
}

/// Reads requests of one connection (headers, then `content-length` bytes) and answers each.
async fn answer<S>(stream: S, recorded: &Mutex<Vec<Vec<u8>>>) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut stream = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut first = true;
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            if line == "\r\n" && !first {
                break;
            }
            first = false;
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await?;
        recorded.lock().expect("bodies").push(body);
        stream
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await?;
    }
}
