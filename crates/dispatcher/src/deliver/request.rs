//! The request of an attempt: the payload signed with every secret of the endpoint that can be
//! opened, the endpoint's headers, and its client certificate if it has one.

use bytes::Bytes;
use chrono::Utc;
use hyper::header::HeaderMap;
use octohooks_db::deliveries::JobContext;
use octohooks_domain::job::DeliveryJob;
use octohooks_domain::signing::{signature_header, EndpointSecret};

use super::{Deliverer, USER_AGENT};
use crate::http::{put_header, Exchange, StoredIdentity};

impl Deliverer {
    pub(super) async fn send(&self, job: &DeliveryJob, context: &JobContext) -> Exchange {
        let msg_id = job.message_id.to_string();
        let timestamp = Utc::now().timestamp();
        let body = Bytes::from(context.payload.clone());
        let owner = job.endpoint_id.to_string();
        let secrets: Vec<EndpointSecret> = context
            .secrets
            .iter()
            .filter_map(|stored| match self.sealer.open(stored, &owner) {
                Ok(text) => EndpointSecret::parse("secret", &text).ok(),
                Err(err) => {
                    tracing::error!(error = %err, endpoint_id = %job.endpoint_id, "cannot open a signing secret");
                    None
                }
            })
            .collect();
        if secrets.is_empty() {
            return Exchange {
                status: 0,
                body: "not sent: no signing secret could be opened (check OCTOHOOKS_SECRET_ENCRYPTION_KEY and OCTOHOOKS_SECRET_DECRYPTION_KEYS)".into(),
                retry_after: None,
                duration: std::time::Duration::ZERO,
            };
        }
        let mut headers = HeaderMap::new();
        if let Some(custom) = context.headers.as_object() {
            for (name, value) in custom {
                if let Some(value) = value.as_str() {
                    put_header(&mut headers, name, value);
                }
            }
        }
        put_header(&mut headers, "content-type", "application/json");
        put_header(&mut headers, "user-agent", USER_AGENT);
        put_header(&mut headers, "webhook-id", &msg_id);
        put_header(&mut headers, "webhook-timestamp", &timestamp.to_string());
        put_header(
            &mut headers,
            "webhook-signature",
            &signature_header(&secrets, &msg_id, timestamp, &body),
        );
        let identity = context
            .client_certificate
            .as_deref()
            .zip(context.client_key.as_deref())
            .map(|(certificate, sealed_key)| StoredIdentity {
                endpoint_id: job.endpoint_id,
                certificate,
                sealed_key,
            });
        self.client
            .post(&context.url, headers, body, identity.as_ref())
            .await
    }
}
