mod support;
mod web_app;

mod auth_pages;
mod login_attempts;
mod password_resets;
mod sessions;
