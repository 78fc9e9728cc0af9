//! Organizations: the list, creating one (staff), and one organization's page:
//! name, allowed email domains and members with their roles.

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::authz::{can, Action, Target};
use frontdesk_core::groups::{self, GroupFields};
use frontdesk_core::{licences, organizations, users as core_users, CoreError, OrgRole};
use serde::Serialize;
use tera::Context;

use super::{finish, render, show_time, verify, Admin, Params, State};
use crate::error::WebError;

#[derive(Serialize)]
struct OrgRow {
    id: i64,
    slug: String,
    name: String,
    domains: String,
    created_at: String,
    require_mfa: bool,
}

#[derive(Serialize)]
struct GroupRow {
    id: i64,
    name: String,
    description: String,
    role: String,
    external: bool,
    members: i64,
}

#[derive(Serialize)]
struct LicenceRow {
    key: String,
    name: String,
    used: i64,
    /// Empty for no limit.
    seats: Option<i64>,
    full: bool,
    groups: Vec<GroupRef>,
}

#[derive(Serialize)]
struct GroupRef {
    id: i64,
    name: String,
}

#[derive(Serialize)]
struct MemberRow {
    user_id: i64,
    email: String,
    role: String,
    since: String,
}

fn org_url(state: &State, id: i64) -> String {
    format!("{}/organizations/{id}", state.settings().admin_prefix)
}

pub async fn list(req: HttpRequest, state: State, admin: Admin) -> Result<HttpResponse, WebError> {
    let actor = admin.actor.clone();
    let orgs = state
        .db(move |conn| organizations::list(conn, &actor))
        .await?;
    let rows: Vec<OrgRow> = orgs
        .into_iter()
        .map(|o| OrgRow {
            domains: o.domains().join(", "),
            id: o.id,
            slug: o.slug,
            name: o.name,
            created_at: show_time(o.created_at),
            require_mfa: o.require_mfa,
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("rows", &rows);
    render(
        &req,
        &state,
        &admin,
        "admin/organizations.html",
        "organizations",
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
    let actor = admin.actor.clone();
    let (slug, name, domains) = (form.text("slug"), form.text("name"), form.text("domains"));
    let result = state
        .db(move |conn| organizations::create(conn, &actor, &slug, &name, &domains))
        .await;
    let list = format!("{}/organizations", state.settings().admin_prefix);
    match result {
        Ok(org) => Ok(super::redirect(
            &state,
            &org_url(&state, org.id),
            "ok",
            &format!("Organization {} created.", org.name),
        )),
        Err(e) => finish(&state, Err::<(), _>(e), &list, |_| String::new()),
    }
}

pub async fn page(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    if !can(&admin.actor, Action::View, &Target::Organization(id)) {
        return Err(WebError::not_found());
    }
    let actor = admin.actor.clone();
    let with_licences = !state.settings().licences.is_empty();
    let (org, members, group_list, counts, licence_rows) = state
        .db(move |conn| {
            let org = organizations::get(conn, id)?;
            let members = organizations::members(conn, id)?;
            let group_list = groups::list(conn, &actor, id)?;
            let counts = groups::member_counts(conn, id)?;
            let mut rows = Vec::new();
            if with_licences {
                let mut carrying = licences::groups_carrying(conn, id)?;
                for s in licences::seats(conn, &actor, id)? {
                    rows.push(LicenceRow {
                        full: s.licence.seats.is_some_and(|n| s.used >= n),
                        groups: carrying
                            .remove(&s.licence.key)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(id, name)| GroupRef { id, name })
                            .collect(),
                        key: s.licence.key,
                        name: s.licence.name,
                        used: s.used,
                        seats: s.licence.seats,
                    });
                }
            }
            Ok::<_, CoreError>((org, members, group_list, counts, rows))
        })
        .await?;
    let ctx_groups = group_list
        .into_iter()
        .map(|g| GroupRow {
            members: counts.get(&g.id).copied().unwrap_or(0),
            id: g.id,
            name: g.name,
            description: g.description,
            role: g.role.unwrap_or_default(),
            external: g.external_id.is_some(),
        })
        .collect::<Vec<_>>();
    let mut ctx = Context::new();
    ctx.insert("groups", &ctx_groups);
    ctx.insert("licences", &licence_rows);
    ctx.insert(
        "org",
        &OrgRow {
            domains: org.domains().join(", "),
            id: org.id,
            slug: org.slug.clone(),
            name: org.name.clone(),
            created_at: show_time(org.created_at),
            require_mfa: org.require_mfa,
        },
    );
    ctx.insert(
        "members",
        &members
            .into_iter()
            .map(|(m, email)| MemberRow {
                user_id: m.user_id,
                email,
                role: m.role,
                since: show_time(m.created_at),
            })
            .collect::<Vec<_>>(),
    );
    ctx.insert(
        "can_edit",
        &can(&admin.actor, Action::Edit, &Target::Organization(id)),
    );
    ctx.insert(
        "can_add",
        &can(
            &admin.actor,
            Action::GrantOrgRole(OrgRole::Member),
            &Target::Organization(id),
        ),
    );
    ctx.insert(
        "roles",
        &OrgRole::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
    );
    ctx.insert("sso", &super::sso::org_section(&state, &admin, id).await?);
    render(
        &req,
        &state,
        &admin,
        "admin/organization.html",
        "organizations",
        ctx,
    )
}

/// Renames and sets the allowed domains in one transaction.
pub async fn edit(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    if !can(&admin.actor, Action::View, &Target::Organization(id)) {
        return Err(WebError::not_found());
    }
    let actor = admin.actor.clone();
    let (name, domains) = (form.text("name"), form.text("domains"));
    let result = state
        .db(move |conn| {
            organizations::update(conn, &actor, id, Some(&name), Some(&domains)).map(|_| ())
        })
        .await;
    finish(&state, result, &org_url(&state, id), |_| {
        "Organization saved.".into()
    })
}

fn parse_role(form: &Params) -> Result<OrgRole, CoreError> {
    form.get("role")
        .and_then(OrgRole::parse)
        .ok_or(CoreError::Invalid {
            field: "role",
            reason: "must be owner, admin or member".into(),
        })
}

pub async fn add_member(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    if !can(&admin.actor, Action::View, &Target::Organization(id)) {
        return Err(WebError::not_found());
    }
    let actor = admin.actor.clone();
    let email = form.text("email");
    let role = parse_role(&form);
    let result = state
        .db(move |conn| {
            let role = role?;
            // A user the admin may not see answers exactly like a missing one,
            // so the form does not tell which addresses have accounts.
            let unknown = || CoreError::Invalid {
                field: "email",
                reason: "no user has this address; invite them instead".into(),
            };
            let user = core_users::find_by_email(conn, &email)?.ok_or_else(unknown)?;
            match organizations::add_member(conn, &actor, id, user.id, role) {
                Err(CoreError::NotFound("user")) => return Err(unknown()),
                r => r?,
            }
            Ok::<_, CoreError>(user.email)
        })
        .await;
    finish(&state, result, &org_url(&state, id), |email| {
        format!("{email} added.")
    })
}

pub async fn change_role(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<(i64, i64)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (id, user) = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    if !can(&admin.actor, Action::View, &Target::Organization(id)) {
        return Err(WebError::not_found());
    }
    let actor = admin.actor.clone();
    let role = parse_role(&form);
    let result = state
        .db(move |conn| organizations::change_role(conn, &actor, id, user, role?))
        .await;
    finish(&state, result, &org_url(&state, id), |_| {
        "Role changed.".into()
    })
}

pub async fn remove_member(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<(i64, i64)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (id, user) = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    if !can(&admin.actor, Action::View, &Target::Organization(id)) {
        return Err(WebError::not_found());
    }
    let actor = admin.actor.clone();
    let result = state
        .db(move |conn| organizations::remove_member(conn, &actor, id, user))
        .await;
    finish(&state, result, &org_url(&state, id), |_| {
        "Member removed.".into()
    })
}

/// Creates a group (name, description, optional role) from the organization page.
pub async fn create_group(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    if !can(&admin.actor, Action::View, &Target::Organization(id)) {
        return Err(WebError::not_found());
    }
    let actor = admin.actor.clone();
    let role = match form.get("role").filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(_) => parse_role(&form).map(Some),
    };
    let fields = (form.text("name"), form.text("description"));
    let result = state
        .db(move |conn| {
            let g = groups::create(
                conn,
                &actor,
                id,
                GroupFields {
                    name: Some(fields.0),
                    description: Some(fields.1),
                    role: Some(role?),
                    external_id: None,
                },
            )?;
            Ok::<_, CoreError>(g.name)
        })
        .await;
    finish(&state, result, &org_url(&state, id), |name| {
        format!("Group {name} created.")
    })
}

pub async fn delete_group(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<(i64, i64)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (id, group) = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    if !can(&admin.actor, Action::View, &Target::Organization(id)) {
        return Err(WebError::not_found());
    }
    let actor = admin.actor.clone();
    let result = state
        .db(move |conn| groups::delete(conn, &actor, id, group))
        .await;
    finish(&state, result, &org_url(&state, id), |_| {
        "Group deleted.".into()
    })
}

/// Puts a licence on a group or takes it off (`group`, `licence`, `action`
/// `assign` or `remove`).
pub async fn group_licence(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    if !can(&admin.actor, Action::View, &Target::Organization(id)) {
        return Err(WebError::not_found());
    }
    let actor = admin.actor.clone();
    let group = form.get("group").and_then(|g| g.parse::<i64>().ok());
    let key = form.text("licence");
    let remove = form.get("action") == Some("remove");
    let result = state
        .db(move |conn| {
            let group = group.ok_or(CoreError::Invalid {
                field: "group",
                reason: "choose a group".into(),
            })?;
            let name = licences::get_type(conn, &key)?.name;
            let g = groups::get(conn, id, group)?;
            if remove {
                licences::unassign_group(conn, &actor, id, group, &key)?;
                Ok::<_, CoreError>(format!("Licence {name} taken off group {}.", g.name))
            } else {
                licences::assign_group(conn, &actor, id, group, &key)?;
                Ok(format!("Group {} now carries licence {name}.", g.name))
            }
        })
        .await;
    finish(&state, result, &org_url(&state, id), |m| m)
}
