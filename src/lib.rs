//! frontdesk: end-user management mounted inside an actix-web app.
//!
//! Build one [`Frontdesk`] with [`Frontdesk::builder`]; it owns the database
//! pool (SQLite or PostgreSQL, picked from the URL) and runs the embedded
//! migrations when built.

pub use frontdesk_core as core;
pub use frontdesk_core::{Action, Actor, CoreError, OrgRole, StaffRole};

use frontdesk_core::db::{self, BackendKind, DatabaseUrl, Pool};

/// Builder for [`Frontdesk`].
#[derive(Debug, Clone)]
pub struct FrontdeskBuilder {
    database_url: Option<String>,
    pool_size: u32,
}

impl Default for FrontdeskBuilder {
    fn default() -> Self {
        FrontdeskBuilder {
            database_url: None,
            pool_size: 8,
        }
    }
}

impl FrontdeskBuilder {
    /// `postgres://…` for PostgreSQL; `sqlite://path` or a file path for SQLite.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// Largest number of open database connections (SQLite is capped at 16).
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size;
        self
    }

    /// Opens the pool and brings the schema up to date.
    pub fn build(self) -> Result<Frontdesk, CoreError> {
        let url = self
            .database_url
            .ok_or_else(|| CoreError::Config("database_url is required".into()))?;
        let backend = DatabaseUrl::parse(&url)?.kind();
        let pool = db::connect(&url, self.pool_size)?;
        Ok(Frontdesk { pool, backend })
    }
}

/// The module's state: shared by its scopes, never mixed with the host's own `Data`.
#[derive(Clone)]
pub struct Frontdesk {
    pool: Pool,
    backend: BackendKind,
}

impl Frontdesk {
    pub fn builder() -> FrontdeskBuilder {
        FrontdeskBuilder::default()
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn backend(&self) -> BackendKind {
        self.backend
    }
}
