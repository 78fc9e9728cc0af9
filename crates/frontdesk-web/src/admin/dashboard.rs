//! The dashboard: counts of users, invitations, sessions and failed sign-ins,
//! and the 30-day chart, for the whole site or the admin's organizations.

use actix_web::{HttpRequest, HttpResponse};
use frontdesk_core::dashboard;
use tera::Context;

use super::{chart, render, Admin, State};
use crate::error::WebError;

pub async fn page(req: HttpRequest, state: State, admin: Admin) -> Result<HttpResponse, WebError> {
    let scope = admin.scope();
    let (counts, days) = state
        .db(move |conn| {
            let counts = dashboard::counts(conn, scope.as_deref())?;
            let days = dashboard::daily(conn, scope.as_deref(), 30)?;
            Ok::<_, frontdesk_core::CoreError>((counts, days))
        })
        .await?;
    // The legend: each series' label, its total and a sample of its line.
    let series: Vec<serde_json::Value> = chart::SERIES
        .iter()
        .enumerate()
        .map(|(i, s)| {
            serde_json::json!({
                "class": s.class,
                "label": s.label,
                "total": days.iter().map(|d| chart::value(d, i)).sum::<i64>(),
                "key": chart::key(s),
            })
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("counts", &counts);
    ctx.insert("signup_policy", &state.settings().signup.policy.describe());
    ctx.insert("chart", &chart::svg(&days));
    ctx.insert("series", &series);
    // The chart's figures again, as a table.
    ctx.insert("days", &days);
    render(
        &req,
        &state,
        &admin,
        "admin/dashboard.html",
        "dashboard",
        ctx,
    )
}
