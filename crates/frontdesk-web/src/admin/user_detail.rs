//! One user: profile and custom fields, memberships, tags, sessions, recent
//! login attempts, lockout and audit trail, and every change an admin makes to
//! them (each a POST with CSRF that core authorizes and audits).

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::audit::{self, AuditFilter};
use frontdesk_core::authz::{can, Action, Target};
use frontdesk_core::login_attempts::{self, AttemptFilter};
use frontdesk_core::profile::{ProfileField, ProfileKind};
use frontdesk_core::users::{self as core_users, UserUpdate};
use frontdesk_core::{
    organizations, password_resets, sessions, tags, CoreError, OrgRole, StaffRole,
};
use serde::Serialize;
use serde_json::{Map, Value};
use tera::Context;

use super::{finish, render, show_opt, show_time, verify, Admin, Params, State};
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
    ip: String,
    device: String,
    user_agent: String,
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
                attempts,
                lockout,
                events,
                names,
            ))
        })
        .await?;
    let (user, target, memberships, user_tags, all_tags, live, attempts, lockout, events, names) =
        loaded;
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
            MembershipRow {
                may_change: can(a, Action::GrantOrgRole(OrgRole::Member), &t)
                    || can(a, Action::GrantOrgRole(OrgRole::Owner), &t),
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
    ctx.insert(
        "attempts",
        &attempts
            .into_iter()
            .map(|t| AttemptRow {
                created_at: show_time(t.created_at),
                success: t.success,
                reason: super::display::reason(&t.reason),
                ip: t.ip.unwrap_or_default(),
                device: super::display::device(t.user_agent.as_deref()),
                user_agent: t.user_agent.unwrap_or_default(),
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

pub async fn edit(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let declared = state.settings().import.profile_fields.clone();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, f| {
            let current = core_users::get_for(conn, actor, id, Action::Edit)?;
            // Profile fields: the declared ones by kind (an unticked box is
            // no), the others shown (an empty value removes one), one new.
            let mut profile = Map::new();
            for d in &declared {
                let name = format!("profile.{}", d.key);
                let v = match d.kind {
                    ProfileKind::Boolean => Value::Bool(f.get(&name) == Some("yes")),
                    _ => Value::String(f.get(&name).unwrap_or("").to_owned()),
                };
                profile.insert(d.key.clone(), v);
            }
            for (k, v) in current.profile_map() {
                if declared.iter().any(|d| d.key == k) {
                    continue;
                }
                match f.get(&format!("profile.{k}")) {
                    Some(new) => {
                        profile.insert(k, Value::String(new.to_owned()));
                    }
                    None if f.0.iter().any(|(key, _)| key == &format!("profile.{k}")) => {}
                    None => {
                        profile.insert(k, v);
                    }
                }
            }
            if let Some(key) = f.get("new_field") {
                profile.insert(key.to_owned(), Value::String(f.text("new_value")));
            }
            let profile = frontdesk_core::profile::validate(&declared, &profile)?;
            let display = f.text("display_name");
            core_users::update(
                conn,
                actor,
                id,
                UserUpdate {
                    first_name: Some(f.text("first_name")),
                    last_name: Some(f.text("last_name")),
                    display_name: Some((!display.is_empty()).then_some(display)),
                    email_verified: Some(f.get("email_verified") == Some("yes")),
                    profile: Some(profile),
                },
            )
        },
        |_| "Profile saved.".into(),
    )
    .await
}

pub async fn suspend(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, f| {
            let reason = f.text("reason");
            if reason.is_empty() {
                return Err(CoreError::Invalid {
                    field: "reason",
                    reason: "give a reason for the suspension".into(),
                });
            }
            let until = core_users::suspension_end(f.get("days"), f.get("until"))?;
            core_users::suspend_until(conn, actor, id, &reason, until)
        },
        |u| match u.suspended_until {
            Some(t) => format!(
                "User suspended until {}; their sessions have ended.",
                show_time(t)
            ),
            None => "User suspended; their sessions have ended.".into(),
        },
    )
    .await
}

pub async fn restore(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, _| core_users::restore(conn, actor, id),
        |_| "User restored.".into(),
    )
    .await
}

pub async fn local_login(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, f| {
            let enabled = match f.get("enabled") {
                Some("yes") => true,
                Some("no") => false,
                _ => {
                    return Err(CoreError::Invalid {
                        field: "enabled",
                        reason: "must be yes or no".into(),
                    })
                }
            };
            core_users::set_local_login(conn, actor, id, enabled)
        },
        |u| {
            if u.local_login_enabled {
                "Password sign-in allowed.".into()
            } else {
                "Password sign-in disabled.".into()
            }
        },
    )
    .await
}

pub async fn password_reset(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let st = state.get_ref().clone();
    let ttl = st.settings().password_reset_ttl;
    let actor = admin.actor.clone();
    let result = state
        .db(move |conn| {
            password_resets::request_for_user(conn, &actor, id, ttl, |user, token, expires_at| {
                crate::password_resets::reset_mail(&st, user, token, expires_at)
            })
        })
        .await;
    if result.is_ok() {
        // Committed: the mail goes out now, not at the worker's next poll.
        state.wake_mailer();
    }
    finish(&state, result, &back(&state, id, &form), |_| {
        "A password reset link was sent to the user's address.".into()
    })
}

pub async fn staff_role(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, f| {
            let role = match f.get("role") {
                None | Some("none") => None,
                Some(r) => Some(StaffRole::parse(r).ok_or(CoreError::Invalid {
                    field: "role",
                    reason: "must be none, viewer, admin or owner".into(),
                })?),
            };
            core_users::set_staff_role(conn, actor, id, role)
        },
        |u| match u.staff_role {
            Some(r) => format!("Staff role set to {r}."),
            None => "Staff role removed.".into(),
        },
    )
    .await
}

pub async fn org_role(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, f| {
            let org = f
                .get("organization")
                .and_then(|o| o.parse::<i64>().ok())
                .ok_or(CoreError::Invalid {
                    field: "organization",
                    reason: "choose an organization".into(),
                })?;
            // A membership the actor cannot see is not there for them.
            core_users::get_for(conn, actor, id, Action::View)?;
            if actor.visible_orgs().is_some_and(|v| !v.contains(&org)) {
                return Err(CoreError::NotFound("membership"));
            }
            match f.get("role") {
                Some("remove") => {
                    organizations::remove_member(conn, actor, org, id)?;
                    Ok("Removed from the organization.".to_owned())
                }
                Some(r) => {
                    let role = OrgRole::parse(r).ok_or(CoreError::Invalid {
                        field: "role",
                        reason: "must be owner, admin, member or remove".into(),
                    })?;
                    organizations::change_role(conn, actor, org, id, role)?;
                    Ok(format!("Organization role set to {role}."))
                }
                None => Err(CoreError::Invalid {
                    field: "role",
                    reason: "choose a role".into(),
                }),
            }
        },
        |m| m,
    )
    .await
}

pub async fn add_tag(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, f| {
            let tag = match (f.get("tag"), f.get("new_tag")) {
                (_, Some(name)) => match tags::get_by_name(conn, name)? {
                    Some(t) => t,
                    None => tags::create(conn, actor, name)?,
                },
                (Some(t), None) => {
                    let tid = t.parse::<i64>().map_err(|_| CoreError::NotFound("tag"))?;
                    tags::list(conn)?
                        .into_iter()
                        .find(|x| x.id == tid)
                        .ok_or(CoreError::NotFound("tag"))?
                }
                (None, None) => {
                    return Err(CoreError::Invalid {
                        field: "tag",
                        reason: "choose or name a tag".into(),
                    })
                }
            };
            tags::assign(conn, actor, id, tag.id)?;
            Ok(tag.name)
        },
        |name| format!("Tagged {name}."),
    )
    .await
}

pub async fn remove_tag(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, f| {
            let tag =
                f.get("tag")
                    .and_then(|t| t.parse::<i64>().ok())
                    .ok_or(CoreError::Invalid {
                        field: "tag",
                        reason: "choose a tag".into(),
                    })?;
            tags::unassign(conn, actor, id, tag)
        },
        |_| "Tag removed.".into(),
    )
    .await
}

pub async fn revoke_all_sessions(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, _| sessions::revoke_all_by_admin(conn, actor, id),
        |n| format!("{n} session(s) ended."),
    )
    .await
}

pub async fn clear_lockout(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, _| login_attempts::clear_lockout(conn, actor, id),
        |_| "Lockout cleared.".into(),
    )
    .await
}

/// Deletes for good once the admin has typed the user's email address.
pub async fn delete(
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
    let typed = form.text("confirm").to_lowercase();
    let result = state
        .db(move |conn| {
            let user = core_users::get_for(conn, &actor, id, Action::Delete)?;
            if typed != user.email {
                return Err(CoreError::Invalid {
                    field: "confirmation",
                    reason: "type the user's email address to delete them".into(),
                });
            }
            core_users::delete(conn, &actor, id)?;
            Ok(user.email)
        })
        .await;
    match result {
        Ok(email) => Ok(super::redirect(
            &state,
            &format!("{}/users", state.settings().admin_prefix),
            "ok",
            &format!("{email} was deleted."),
        )),
        Err(e) => finish(&state, Err::<(), _>(e), &user_url(&state, id), |_| {
            String::new()
        }),
    }
}
