//! One integration test binary, a module per feature. Each test runs on a fresh
//! SQLite file and, when configured, a fresh PostgreSQL database.

mod support;
mod web_app;

mod admin_access;
mod admin_browser;
mod admin_fixture;
mod admin_imports;
mod admin_lists;
mod admin_pages;
mod admin_users;
mod api_keys;
mod api_v1_auth;
mod api_v1_imports;
mod api_v1_invitations;
mod api_v1_matrix;
mod api_v1_openapi;
mod api_v1_organizations;
mod api_v1_records;
mod api_v1_support;
mod api_v1_users;
mod auth_pages;
mod authz;
mod dashboard;
mod db_outage;
mod events;
mod exports;
mod extensions;
mod forms;
mod imports;
mod invitation_browser;
mod invitation_pages;
mod invitations;
mod login_attempts;
mod mail;
mod namespace;
mod organizations;
mod password_resets;
mod profile_fields;
mod raw_http;
mod session_cache;
mod sessions;
mod tags;
mod users;
mod users_query;
