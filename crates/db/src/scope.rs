//! Tenant scope as a type. A request reaches an application only through
//! [`crate::applications::find`], which filters by the caller's environment; what it returns is
//! the one way to make an [`AppScope`], and the queries of endpoints, messages and attempts
//! take an [`AppScope`] or a [`Scoped`] row found through one. So a handler cannot read or change
//! another tenant's rows by forgetting a filter: the code that would do it does not compile.

use std::ops::Deref;

use uuid::Uuid;

use crate::models::Application;

/// An application of the caller's environment: the key to everything under it. Nothing outside
/// this crate can make one from a bare id:
///
/// ```compile_fail
/// let forged = octohooks_db::scope::AppScope(uuid::Uuid::nil());
/// ```
///
/// nor vouch for a row it did not find:
///
/// ```compile_fail
/// fn vouch(row: octohooks_db::models::Endpoint) -> octohooks_db::scope::Scoped<octohooks_db::models::Endpoint> {
///     octohooks_db::scope::Scoped::new(row)
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AppScope(Uuid);

impl AppScope {
    /// The application's id, for what it is written into (a new message's row).
    pub fn id(self) -> Uuid {
        self.0
    }
}

/// A row found within an [`AppScope`] (an application, endpoint or message of the caller):
/// the queries below it (secrets, attempts, resends) take this rather than a bare id.
#[derive(Debug, Clone)]
pub struct Scoped<T>(T);

impl<T> Scoped<T> {
    /// Only the finders of this crate vouch for a row.
    pub(crate) fn new(row: T) -> Self {
        Self(row)
    }

    /// The row itself, to answer with.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Scoped<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl Scoped<Application> {
    /// The scope of everything under this application.
    pub fn scope(&self) -> AppScope {
        AppScope(self.0.id)
    }
}
