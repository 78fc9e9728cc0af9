//! One user: profile and custom fields, memberships, tags, sessions, recent
//! login attempts, lockout and audit trail, and every change an admin makes to
//! them (each a POST with CSRF that core authorizes and audits).

mod account;
mod edit;
mod licences;
mod roles;
mod user_tags;

pub use account::*;
pub use edit::*;
pub use licences::*;
pub use roles::*;
pub use user_tags::*;

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::audit::{self, AuditFilter};
use frontdesk_core::authz::{can, Action, Target};
use frontdesk_core::login_attempts::{self, AttemptFilter};
use frontdesk_core::profile::ProfileField;
use frontdesk_core::users::{self as core_users};
use frontdesk_core::{organizations, sessions, tags, CoreError, OrgRole, StaffRole};
use serde::Serialize;
use serde_json::Value;
use tera::Context;

use crate::admin::{finish, render, show_opt, show_time, verify, Admin, Params, State};
use crate::error::WebError;

#[derive(Serialize)]
struct Field {
    key: String,
    value: String,
}

#[derive(Serialize)]
struct MembershipRow {
    organization_id: i64,
    organization: String,
    role: String,
    may_change: bool,
    /// The user's groups in this organization.
    groups: Vec<String>,
    /// The licences the user holds there, with their sources.
    licences: Vec<HeldRow>,
    /// Declared licences the user holds no direct assignment of there.
    assignable: Vec<LicenceChoice>,
    may_assign: bool,
}

#[derive(Serialize)]
struct HeldRow {
    key: String,
    name: String,
    /// "direct", "via group Support", joined.
    sources: Vec<String>,
    direct: bool,
}

#[derive(Serialize)]
struct LicenceChoice {
    key: String,
    name: String,
}

#[derive(Serialize)]
struct SessionRow {
    id: i64,
    /// "Chrome 131 on macOS"; the raw User-Agent in a tooltip.
    device: String,
    user_agent: String,
    ip: String,
    created_at: String,
    last_active_at: String,
}

#[derive(Serialize)]
struct AttemptRow {
    created_at: String,
    success: bool,
    reason: String,
    /// How the attempt proved who it was (empty on older rows).
    method: String,
    ip: String,
    device: String,
    user_agent: String,
}

/// A service the user signed in on, with the first and latest sign-in.
#[derive(Serialize)]
struct ServiceRow {
    slug: String,
    name: String,
    first_login_at: String,
    last_login_at: String,
}

#[derive(Serialize)]
struct TagRow {
    id: i64,
    name: String,
}

#[derive(Serialize)]
struct Allowed {
    edit: bool,
    suspend: bool,
    delete: bool,
    staff_role: bool,
    create_tags: bool,
}

/// A declared profile field on the user page, rendered by kind.
#[derive(Serialize)]
struct TypedField {
    key: String,
    label: String,
    kind: &'static str,
    choices: Vec<String>,
    required: bool,
    help: String,
    value: String,
    checked: bool,
}

fn profile_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn user_url(state: &State, id: i64) -> String {
    format!("{}/users/{id}", state.settings().admin_prefix)
}

/// Where a change goes back to: the users list when it came from a row's
/// actions menu (`from=list`, with the list's own query), else the user's page.
fn back(state: &State, id: i64, form: &Params) -> String {
    if form.get("from") == Some("list") {
        super::users::back_to(state, form)
    } else {
        user_url(state, id)
    }
}

pub async fn page(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let actor = admin.actor.clone();
    let config = state.settings().auth.sessions;
    let policy = state.settings().auth.lockout;
    let visible = admin.scope();
    let audit_scope = visible.clone();
    let loaded = state
        .db(move |conn| {
            let user = core_users::get_for(conn, &actor, id, Action::View)?;
            let target = core_users::target(conn, &user)?;
            let memberships = organizations::memberships_of(conn, id)?;
            let user_tags = tags::tags_of(conn, id)?;
            let all_tags = tags::list(conn)?;
            let live = sessions::list_live_for_user(conn, id, &config)?;
            let filter = AttemptFilter {
                user_id: Some(id),
                ..AttemptFilter::default()
            };
            let (attempts, _) = login_attempts::list(conn, &filter, 1, 20)?;
            let two_step = AttemptFilter {
                two_step: true,
                ..filter
            };
            let (mfa_attempts, _) = login_attempts::list(conn, &two_step, 1, 10)?;
            let services = frontdesk_core::services::of_user(conn, id)?;
            let user_groups = frontdesk_core::groups::of_user(conn, id)?;
            let held = frontdesk_core::licences::effective_everywhere(conn, id)?;
            let lockout = login_attempts::lockout(conn, &user.email, None, &policy)?;
            let events = audit::list(
                conn,
                &AuditFilter {
                    target: Some(format!("user:{id}")),
                    organizations: audit_scope,
                    ..AuditFilter::default()
                },
                1,
                20,
            )?
            .0;
            let names = super::audit::load_names(conn, &events)?;
            Ok::<_, CoreError>((
                user,
                target,
                memberships,
                user_tags,
                all_tags,
                live,
                (attempts, mfa_attempts, services, user_groups, held),
                lockout,
                events,
                names,
            ))
        })
        .await?;
    let (
        user,
        target,
        memberships,
        user_tags,
        all_tags,
        live,
        (attempts, mfa_attempts, services, user_groups, mut held),
        lockout,
        events,
        names,
    ) = loaded;
    let declared_licences = &state.settings().licences;
    let a = &admin.actor;
    let allowed = Allowed {
        edit: can(a, Action::Edit, &target),
        suspend: can(a, Action::Suspend, &target),
        delete: can(a, Action::Delete, &target),
        staff_role: can(a, Action::GrantStaffRole, &target),
        create_tags: can(a, Action::ManageSite, &Target::Site),
    };
    let values = user.profile_map();
    let declared = &state.settings().import.profile_fields;
    let typed: Vec<TypedField> = declared
        .iter()
        .map(|d| TypedField {
            key: d.key.clone(),
            label: d.label.clone(),
            kind: d.kind.name(),
            choices: d.choices().to_vec(),
            required: d.required,
            help: d.help.clone().unwrap_or_default(),
            value: values
                .get(&d.key)
                .map(ProfileField::display)
                .unwrap_or_default(),
            checked: values.get(&d.key) == Some(&Value::Bool(true)),
        })
        .collect();
    let profile: Vec<Field> = values
        .iter()
        .filter(|(k, _)| !declared.iter().any(|d| &d.key == *k))
        .map(|(k, v)| Field {
            key: k.clone(),
            value: profile_text(v),
        })
        .collect();
    let memberships: Vec<MembershipRow> = memberships
        .into_iter()
        .filter(|(m, _)| {
            visible
                .as_ref()
                .is_none_or(|v| v.contains(&m.organization_id))
        })
        .map(|(m, o)| {
            let current = OrgRole::parse(&m.role).unwrap_or(OrgRole::Member);
            let t = Target::User {
                id,
                staff_role: None,
                orgs: vec![(o.id, current)],
            };
            let here = held.remove(&o.id).unwrap_or_default();
            let assignable = declared_licences
                .iter()
                .filter(|l| !here.iter().any(|h| h.key == l.key && h.direct()))
                .map(|l| LicenceChoice {
                    key: l.key.clone(),
                    name: l.name.clone(),
                })
                .collect();
            let licences = here
                .into_iter()
                .map(|e| HeldRow {
                    direct: e.direct(),
                    sources: e
                        .sources
                        .iter()
                        .map(|s| match s {
                            frontdesk_core::licences::Source::Direct => "direct".to_owned(),
                            frontdesk_core::licences::Source::Group { group_name, .. } => {
                                format!("via group {group_name}")
                            }
                        })
                        .collect(),
                    key: e.key,
                    name: e.name,
                })
                .collect();
            MembershipRow {
                may_assign: can(a, Action::Edit, &Target::Organization(o.id)),
                licences,
                assignable,
                may_change: can(a, Action::GrantOrgRole(OrgRole::Member), &t)
                    || can(a, Action::GrantOrgRole(OrgRole::Owner), &t),
                groups: user_groups
                    .iter()
                    .filter(|(org, _)| *org == o.id)
                    .map(|(_, name)| name.clone())
                    .collect(),
                organization_id: o.id,
                organization: o.name,
                role: m.role,
            }
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("user", &user);
    ctx.insert("name", &user.name());
    ctx.insert("account_status", user.account_status().as_str());
    ctx.insert("terms_accepted_at", &show_opt(user.terms_accepted_at));
    ctx.insert("created_at", &show_time(user.created_at));
    ctx.insert("last_login", &show_opt(user.last_login_at));
    ctx.insert("last_active", &show_opt(user.last_active_at));
    ctx.insert("suspended_at", &show_opt(user.suspended_at));
    ctx.insert("suspended_until", &user.suspended_until.map(show_time));
    ctx.insert("max_suspension_days", &core_users::MAX_SUSPENSION_DAYS);
    ctx.insert("profile", &profile);
    ctx.insert("typed_profile", &typed);
    ctx.insert("memberships", &memberships);
    ctx.insert("licences_declared", &!declared_licences.is_empty());
    ctx.insert(
        "user_tags",
        &user_tags
            .iter()
            .map(|t| TagRow {
                id: t.id,
                name: t.name.clone(),
            })
            .collect::<Vec<_>>(),
    );
    ctx.insert(
        "all_tags",
        &all_tags
            .iter()
            .filter(|t| !user_tags.iter().any(|u| u.id == t.id))
            .map(|t| TagRow {
                id: t.id,
                name: t.name.clone(),
            })
            .collect::<Vec<_>>(),
    );
    ctx.insert(
        "sessions",
        &live
            .into_iter()
            .map(|s| SessionRow {
                id: s.id,
                device: super::display::device(s.user_agent.as_deref()),
                user_agent: s.user_agent.unwrap_or_default(),
                ip: s.ip.unwrap_or_default(),
                created_at: show_time(s.created_at),
                last_active_at: show_time(s.last_active_at),
            })
            .collect::<Vec<_>>(),
    );
    let attempt_rows = |rows: Vec<login_attempts::LoginAttempt>| {
        rows.into_iter()
            .map(|t| AttemptRow {
                created_at: show_time(t.created_at),
                success: t.success,
                reason: super::display::reason(&t.reason),
                method: t
                    .method
                    .as_deref()
                    .map(super::display::method)
                    .unwrap_or_default(),
                ip: t.ip.unwrap_or_default(),
                device: super::display::device(t.user_agent.as_deref()),
                user_agent: t.user_agent.unwrap_or_default(),
            })
            .collect::<Vec<_>>()
    };
    ctx.insert("attempts", &attempt_rows(attempts));
    ctx.insert("mfa_attempts", &attempt_rows(mfa_attempts));
    ctx.insert(
        "services",
        &services
            .into_iter()
            .map(|s| ServiceRow {
                slug: s.service.slug,
                name: s.service.name,
                first_login_at: show_time(s.first_login_at),
                last_login_at: show_time(s.last_login_at),
            })
            .collect::<Vec<_>>(),
    );
    ctx.insert("locked_until", &lockout.map(|l| show_time(l.until)));
    ctx.insert(
        "events",
        &events
            .into_iter()
            .map(|e| super::audit::row(e, &names))
            .collect::<Vec<_>>(),
    );
    ctx.insert("allowed", &allowed);
    ctx.insert(
        "staff_roles",
        &StaffRole::ALL
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>(),
    );
    ctx.insert(
        "org_roles",
        &OrgRole::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
    );
    ctx.insert("mfa", &super::mfa::section(&state, user.id).await?);
    ctx.insert("sso", &super::sso::section(&state, user.id).await?);
    let sections = super::extension_sections(&state, &admin, user.id).await?;
    ctx.insert("ext_sections", &sections);
    render(&req, &state, &admin, "admin/user.html", "users", ctx)
}

/// Verifies the form, runs `change` with the actor, and redirects back to the
/// user's page with a flash.
async fn change<T: Send + 'static>(
    req: &HttpRequest,
    state: &State,
    admin: &Admin,
    id: i64,
    body: &[u8],
    change: impl FnOnce(
            &mut frontdesk_core::DbConnection,
            &frontdesk_core::Actor,
            &Params,
        ) -> Result<T, CoreError>
        + Send
        + 'static,
    ok: impl FnOnce(T) -> String,
) -> Result<HttpResponse, WebError> {
    let form = Params::form(body)?;
    verify(req, state, &form)?;
    let to = back(state, id, &form);
    let actor = admin.actor.clone();
    let result = state.db(move |conn| change(conn, &actor, &form)).await;
    finish(state, result, &to, ok)
}
