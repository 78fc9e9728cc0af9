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
    let totals = days.iter().fold((0, 0, 0), |t, d| {
        (t.0 + d.signups, t.1 + d.signins, t.2 + d.failed_signins)
    });
    let mut ctx = Context::new();
    ctx.insert("counts", &counts);
    ctx.insert("chart", &chart::svg(&days));
    ctx.insert("totals", &totals);
    render(
        &req,
        &state,
        &admin,
        "admin/dashboard.html",
        "dashboard",
        ctx,
    )
}
