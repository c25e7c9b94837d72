//! Prepared statements for hand-written SQL. Diesel never caches a `sql_query` (its text could
//! be built at run time), so Postgres would parse and plan each call again: a third of its CPU
//! under load went there. The statements on the hot path are fixed strings, so they are marked
//! safe to cache here; each connection then prepares each of them once, keyed by its text.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::QueryResult;

/// A query whose SQL text never changes between calls, so its prepared statement can be kept.
/// Only wrap queries built from a `&'static str` with a fixed list of binds.
#[derive(Debug, Clone)]
pub struct Prepared<Q>(Q);

/// Marks a fixed-text query (typically `diesel::sql_query(CONST).bind(…)`) as cacheable.
pub fn prepared<Q>(query: Q) -> Prepared<Q> {
    Prepared(query)
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    // No static id: the cache is keyed by the SQL text (and bind types) instead.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}
