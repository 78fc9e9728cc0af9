//! One integration test binary, a module per feature. Each test runs on a fresh
//! SQLite file and, when configured, a fresh PostgreSQL database.

mod support;

mod api_keys;
mod authz;
mod dashboard;
mod organizations;
mod tags;
mod users;
mod users_query;
