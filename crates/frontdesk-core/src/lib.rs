#![warn(missing_docs)]

//! frontdesk-core: the domain of frontdesk. Schema and queries (diesel, SQLite or
//! PostgreSQL through one connection type), the services that change users and
//! organizations, and the one authorization function. No web framework here.

pub mod activity;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod dashboard;
pub mod db;
pub mod email_verification;
pub mod error;
pub mod events;
pub mod exports;
pub mod groups;
pub mod hooks;
pub mod import_jobs;
pub mod imports;
pub mod invitations;
pub mod licences;
pub mod login_attempts;
pub mod mfa;
pub mod names;
pub mod organizations;
pub mod outbox;
pub mod password_resets;
pub mod passwords;
pub mod profile;
pub mod schema;
pub mod scim;
pub mod scim_tokens;
pub mod services;
pub mod session_cache;
pub mod sessions;
pub mod signup;
pub mod sso;
pub mod tags;
pub mod time;
pub mod tokens;
pub mod users;
pub mod validate;

pub use authz::{Action, Actor, OrgRole, StaffRole, Target};
pub use db::{DbConnection, Pool};
pub use error::{CoreError, CoreResult};
