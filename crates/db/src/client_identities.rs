//! Client certificates of endpoints (mutual TLS): the PEM chain, and the private key as the
//! caller sealed it. The dispatcher reads both with the job's context
//! ([`crate::deliveries::job_contexts`]).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::models::Endpoint;
use crate::schema::endpoints;
use crate::scope::Scoped;
use crate::{Conn, DbResult};

/// Sets (`Some((certificate, sealed key))`) or removes (`None`) the endpoint's client
/// certificate.
pub async fn set(
    conn: &mut Conn,
    endpoint: &Scoped<Endpoint>,
    identity: Option<(&str, &str)>,
) -> DbResult<()> {
    let (certificate, key) = identity.unzip();
    diesel::update(endpoints::table.find(endpoint.id))
        .set((
            endpoints::client_certificate.eq(certificate),
            endpoints::client_key.eq(key),
            endpoints::updated.eq(chrono::Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The endpoint's client certificate chain (PEM), if it has one.
pub async fn certificate(conn: &mut Conn, endpoint: &Scoped<Endpoint>) -> DbResult<Option<String>> {
    Ok(endpoints::table
        .find(endpoint.id)
        .select(endpoints::client_certificate)
        .first(conn)
        .await?)
}

/// Rewrites every stored client key for which `rewrite(endpoint id, stored)` returns a new
/// value (re-encryption under a new key); returns how many changed. In pages, like
/// [`crate::endpoints::rewrite_secrets`].
pub async fn rewrite_keys<F>(conn: &mut Conn, mut rewrite: F) -> DbResult<usize>
where
    F: FnMut(Uuid, &str) -> Option<String>,
{
    let mut changed = 0;
    let mut after = Uuid::nil();
    loop {
        let page: Vec<(Uuid, Option<String>)> = endpoints::table
            .filter(endpoints::id.gt(after))
            .filter(endpoints::client_key.is_not_null())
            .order(endpoints::id.asc())
            .select((endpoints::id, endpoints::client_key))
            .limit(500)
            .load(conn)
            .await?;
        let Some((last, _)) = page.last() else {
            return Ok(changed);
        };
        after = *last;
        for (id, stored) in page {
            let Some(stored) = stored else { continue };
            if let Some(new) = rewrite(id, &stored) {
                diesel::update(endpoints::table.find(id))
                    .set(endpoints::client_key.eq(new))
                    .execute(conn)
                    .await?;
                changed += 1;
            }
        }
    }
}
