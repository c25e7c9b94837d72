//! The TLS side of deliveries: the roots certificates are verified against (the public ones
//! and `extra_ca_file`), and one client per client certificate (mutual TLS), kept in a bounded
//! cache, so that connections presenting one identity are never reused for another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use octohooks_domain::client_identity::{self, ClientIdentity};
use octohooks_domain::sealing::Sealer;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use super::dial::Dialer;
use super::{hyper_client, ClientError, HyperClient};

/// Clients kept for distinct client certificates; past it the cache starts again.
const MAX_IDENTITY_CLIENTS: usize = 256;

/// The public roots and, when given, the authorities of `extra_ca_file`.
pub(super) fn roots(extra_ca_file: Option<&std::path::Path>) -> Result<RootCertStore, ClientError> {
    let mut roots = RootCertStore::empty();
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
    Ok(roots)
}

fn builder(
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, rustls::Error> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
}

/// The configuration of deliveries that present no client certificate.
pub(super) fn anonymous(roots: Arc<RootCertStore>) -> Result<rustls::ClientConfig, ClientError> {
    builder()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .map_err(|err| ClientError(err.to_string()))
}

/// An endpoint's client certificate as stored: the PEM chain and the sealed key.
#[derive(Debug, Clone, Copy)]
pub struct StoredIdentity<'a> {
    /// The endpoint, which the key is sealed for.
    pub endpoint_id: uuid::Uuid,
    /// The PEM chain.
    pub certificate: &'a str,
    /// The sealed private key.
    pub sealed_key: &'a str,
}

impl StoredIdentity<'_> {
    /// Names the stored pair (a new certificate or key is a new client).
    fn cache_key(&self) -> [u8; 32] {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(self.endpoint_id.as_bytes());
        context.update(self.certificate.as_bytes());
        context.update(&[0]);
        context.update(self.sealed_key.as_bytes());
        let mut key = [0; 32];
        key.copy_from_slice(context.finish().as_ref());
        key
    }

    /// Opens the key and checks the pair, as the API did when it stored them.
    fn open(&self, sealer: &Sealer) -> Result<ClientIdentity, String> {
        let owner = client_identity::key_owner(self.endpoint_id);
        let key = sealer.open(self.sealed_key, &owner).map_err(|err| {
            tracing::error!(error = %err, endpoint_id = %self.endpoint_id, "cannot open a client key");
            "not sent: the client certificate's key could not be opened (check OCTOHOOKS_SECRET_ENCRYPTION_KEY and OCTOHOOKS_SECRET_DECRYPTION_KEYS)".to_owned()
        })?;
        ClientIdentity::parse(self.certificate, &key).map_err(|err| {
            format!(
                "not sent: the client certificate is unusable: {}",
                err.message
            )
        })
    }
}

/// Clients that present a client certificate, one per stored identity: a key is opened and
/// parsed once, not per delivery.
pub(super) struct IdentityClients {
    roots: Arc<RootCertStore>,
    dialer: Dialer,
    sealer: Arc<Sealer>,
    clients: Mutex<HashMap<[u8; 32], HyperClient>>,
}

impl IdentityClients {
    pub(super) fn new(roots: Arc<RootCertStore>, dialer: Dialer, sealer: Arc<Sealer>) -> Self {
        Self {
            roots,
            dialer,
            sealer,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client that presents `stored` (made on first use).
    pub(super) fn client(&self, stored: &StoredIdentity<'_>) -> Result<HyperClient, String> {
        let key = stored.cache_key();
        if let Some(client) = self
            .clients
            .lock()
            .map_err(|_| "client cache poisoned")?
            .get(&key)
        {
            return Ok(client.clone());
        }
        let identity = stored.open(&self.sealer)?;
        let config = builder()
            .and_then(|builder| {
                builder
                    .with_root_certificates(self.roots.clone())
                    .with_client_auth_cert(identity.certificates(), identity.key())
            })
            .map_err(|err| format!("client certificate unusable: {err}"))?;
        let client = hyper_client(self.dialer.clone(), config);
        let mut clients = self.clients.lock().map_err(|_| "client cache poisoned")?;
        if clients.len() >= MAX_IDENTITY_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }
}
