//! Invitations: invite by email into an organization with a role and a
//! message, the list with status filter and delivery state, resend (a new
//! link; the old one dies) and cancel. The rules and the audit are the core's.

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::authz::{can, Action, Target};
use frontdesk_core::invitations::{
    self, InvitationError, InvitationFilter, InvitationStatus, NewInvitation,
};
use frontdesk_core::{organizations, OrgRole};
use serde::Serialize;
use tera::Context;

use super::{finish, redirect, render, show_opt, show_time, verify, Admin, Params, State};
use crate::error::WebError;

const PER_PAGE: i64 = 50;

/// The list's own query keys; a form's `return` value is rebuilt from these only.
const FILTER_KEYS: [&str; 4] = ["status", "org", "q", "page"];

#[derive(Serialize)]
struct Row {
    id: i64,
    email: String,
    organization: String,
    role: String,
    status: String,
    expires_at: String,
    send_count: i32,
    last_sent_at: String,
    created_at: String,
    /// `queued`, `sending`, `sent` or `failed`; empty when no mail exists.
    delivery: String,
    attempts: i32,
    last_error: String,
    may_resend: bool,
    may_cancel: bool,
}

fn list_url(state: &State, query: &str) -> String {
    let base = format!("{}/invitations", state.settings().admin_prefix);
    if query.is_empty() {
        base
    } else {
        format!("{base}?{query}")
    }
}

/// The list's filters, from any query string, for redirects back to it.
fn filters_of(raw: &str) -> String {
    let p = Params::parse(raw.as_bytes());
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            FILTER_KEYS
                .iter()
                .filter_map(|k| p.get(k).map(|v| (*k, v.to_owned()))),
        )
        .finish()
}

fn parse_status(p: &Params) -> Result<Option<InvitationStatus>, WebError> {
    match p.get("status") {
        None => Ok(None),
        Some(s) => InvitationStatus::parse(s).map(Some).ok_or_else(|| {
            WebError::bad_request(
                "status must be pending, accepted, declined, expired or cancelled",
            )
        }),
    }
}

pub async fn list(req: HttpRequest, state: State, admin: Admin) -> Result<HttpResponse, WebError> {
    let p = Params::query(&req);
    let page = p.page()?;
    let filter = InvitationFilter {
        organization_id: p.int("org")?,
        status: parse_status(&p)?,
        email: p.get("q").map(str::to_owned),
    };
    let actor = admin.actor.clone();
    let (items, total, orgs, all_groups) = state
        .db(move |conn| {
            let (items, total) = invitations::list(conn, &actor, &filter, page, PER_PAGE)?;
            let orgs = organizations::list(conn, &actor)?;
            let groups = super::new_user::offered_groups(conn, &actor, &orgs)?;
            Ok::<_, InvitationError>((items, total, orgs, groups))
        })
        .await?;
    let actor = &admin.actor;
    let may_grant = |org: i64, role: OrgRole| {
        can(
            actor,
            Action::GrantOrgRole(role),
            &Target::Organization(org),
        )
    };
    let rows: Vec<Row> = items
        .into_iter()
        .map(|item| {
            let inv = item.invitation;
            let grantable = may_grant(inv.organization_id, inv.role());
            let delivery = item.delivery;
            Row {
                id: inv.id,
                email: inv.email,
                organization: item.organization_name,
                role: inv.role,
                status: item.status.to_string(),
                expires_at: show_time(inv.expires_at),
                send_count: inv.send_count,
                last_sent_at: show_opt(inv.last_sent_at),
                created_at: show_time(inv.created_at),
                delivery: delivery
                    .as_ref()
                    .map(|d| d.status.clone())
                    .unwrap_or_default(),
                attempts: delivery.as_ref().map_or(0, |d| d.attempts),
                last_error: delivery.and_then(|d| d.last_error).unwrap_or_default(),
                may_resend: grantable
                    && matches!(
                        item.status,
                        InvitationStatus::Pending | InvitationStatus::Expired
                    ),
                may_cancel: grantable && item.status == InvitationStatus::Pending,
            }
        })
        .collect();
    // The create form offers only organizations and roles this admin may grant.
    let invitable: Vec<(i64, String)> = orgs
        .iter()
        .filter(|o| may_grant(o.id, OrgRole::Member))
        .map(|o| (o.id, o.name.clone()))
        .collect();
    let roles: Vec<&str> = OrgRole::ALL
        .iter()
        .filter(|r| invitable.iter().any(|(o, _)| may_grant(*o, **r)))
        .map(|r| r.as_str())
        .collect();
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let keep = p.pairs_without(&["page"]);
    let link = |n: i64| {
        list_url(
            &state,
            &format!("{keep}{}page={n}", if keep.is_empty() { "" } else { "&" }),
        )
    };
    let mut ctx = Context::new();
    ctx.insert("rows", &rows);
    ctx.insert("total", &total);
    ctx.insert("page", &page);
    ctx.insert("pages", &pages);
    ctx.insert("prev_link", &(page > 1).then(|| link(page - 1)));
    ctx.insert("next_link", &(page < pages).then(|| link(page + 1)));
    ctx.insert("f_status", &p.text("status"));
    ctx.insert("f_org", &p.text("org"));
    ctx.insert("f_q", &p.text("q"));
    ctx.insert("statuses", &InvitationStatus::ALL);
    ctx.insert(
        "organizations",
        &orgs
            .iter()
            .map(|o| (o.id, o.name.clone()))
            .collect::<Vec<_>>(),
    );
    ctx.insert(
        "groups",
        &super::new_user::group_choices(&invitable, &all_groups),
    );
    ctx.insert("invitable", &invitable);
    ctx.insert("roles", &roles);
    ctx.insert("max_message", &invitations::MAX_MESSAGE);
    ctx.insert("return_query", &filters_of(req.query_string()));
    render(
        &req,
        &state,
        &admin,
        "admin/invitations.html",
        "invitations",
        ctx,
    )
}

pub async fn create(
    req: HttpRequest,
    state: State,
    admin: Admin,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let to = list_url(&state, "");
    let Some(organization_id) = form.int("organization")? else {
        return Ok(redirect(&state, &to, "error", "Choose an organization."));
    };
    let Some(role) = form.get("role").and_then(OrgRole::parse) else {
        return Ok(redirect(
            &state,
            &to,
            "error",
            "Choose a role: member, admin or owner.",
        ));
    };
    let new = NewInvitation {
        organization_id,
        email: form.text("email"),
        role,
        message: form.get("message").map(str::to_owned),
        first_name: form.get("first_name").map(str::to_owned),
        last_name: form.get("last_name").map(str::to_owned),
        groups: form.ids("groups")?,
    };
    let actor = admin.actor.clone();
    let st = state.get_ref().clone();
    let result = state
        .db(move |conn| {
            match invitations::create(
                conn,
                &actor,
                st.invitation_settings(),
                st.mail_templates(),
                &new,
            ) {
                Ok(issued) => Ok(Ok(issued.invitation.email)),
                Err(InvitationError::AlreadyPending { email, .. }) => Ok(Err(email)),
                Err(e) => Err(WebError::from(e)),
            }
        })
        .await;
    match result {
        Ok(Ok(email)) => {
            state.wake_mailer();
            Ok(redirect(
                &state,
                &to,
                "ok",
                &if state.mail_configured() {
                    format!("Invitation to {email} created; the mail is on its way.")
                } else {
                    format!(
                        "Invitation to {email} created. No mail transport is set up: \
                         it waits in the outbox until mail is set up."
                    )
                },
            ))
        }
        // Show the pending one, with its Resend button.
        Ok(Err(email)) => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("q", &email)
                .append_pair("status", "pending")
                .finish();
            Ok(redirect(
                &state,
                &list_url(&state, &query),
                "error",
                &format!(
                    "An invitation to {email} is already pending in this organization. \
                     Resend it below instead."
                ),
            ))
        }
        Err(e) => finish(&state, Err::<(), _>(e), &to, |_| String::new()),
    }
}

pub async fn resend(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let actor = admin.actor.clone();
    let st = state.get_ref().clone();
    let result = state
        .db(move |conn| {
            invitations::resend(
                conn,
                &actor,
                st.invitation_settings(),
                st.mail_templates(),
                id,
            )
        })
        .await;
    if result.is_ok() {
        state.wake_mailer();
    }
    let to = list_url(&state, &filters_of(form.get("return").unwrap_or("")));
    finish(&state, result, &to, |issued| {
        format!(
            "Invitation to {} sent again; the earlier link no longer works.",
            issued.invitation.email
        )
    })
}

pub async fn cancel(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let actor = admin.actor.clone();
    let result = state
        .db(move |conn| invitations::cancel(conn, &actor, id))
        .await;
    let to = list_url(&state, &filters_of(form.get("return").unwrap_or("")));
    finish(&state, result, &to, |inv| {
        format!(
            "Invitation to {} cancelled; its link no longer works.",
            inv.email
        )
    })
}
