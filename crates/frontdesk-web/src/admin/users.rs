//! The users list: search, every filter of the users query in the URL (so a
//! view can be bookmarked), sort, pagination, and bulk actions on the selected
//! rows. A bulk action is all or nothing: one refused user changes no one.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::authz::{can, Action, Target};
use frontdesk_core::users::bulk::BulkChange;
use frontdesk_core::users::query::UserQuery;
use frontdesk_core::users::{self as core_users};
use frontdesk_core::{organizations, tags, CoreError, OrgRole};
use serde::Serialize;
use tera::Context;

use super::{finish, redirect, render, show_opt, verify, Admin, Params, State};
use crate::error::WebError;

/// At most this many users in one bulk action (one page of the list).
pub const MAX_BULK: usize = 100;

#[derive(Serialize)]
struct Row {
    id: i64,
    name: String,
    email: String,
    staff_role: Option<String>,
    organizations: Vec<OrgBadge>,
    /// Admin or owner of the one organization the list is filtered to.
    org_admin: bool,
    tags: Vec<String>,
    status: String,
    email_verified: bool,
    suspended: bool,
    /// When a timed suspension ends.
    suspended_until: Option<String>,
    last_login: String,
    last_active: String,
    /// The services the user signed in on (slugs).
    services: Vec<String>,
    /// With the list filtered to one organization: the user's groups there.
    groups: Vec<String>,
    /// With the list filtered to one organization: the licences the user
    /// holds there, each with its sources ("direct", "via Support").
    licences: Vec<LicenceCell>,
    local_login: bool,
    /// Has a confirmed second factor.
    mfa: bool,
    created_at: String,
    may: RowActions,
    /// The extension columns' cells, in the order of their headers.
    ext: Vec<String>,
    /// The profile fields marked `list_column`, in the order of their headers.
    profile: Vec<String>,
}

#[derive(Serialize)]
struct LicenceCell {
    name: String,
    sources: String,
}

#[derive(Serialize)]
struct OrgBadge {
    name: String,
    role: &'static str,
}

/// What the row's actions menu offers: each is what the one authorization
/// function allows this admin to do to this user (the handlers check again).
#[derive(Serialize)]
struct RowActions {
    suspend: bool,
    password_reset: bool,
    delete: bool,
}

/// A sortable column's link and state, for `aria-sort` and the arrow.
#[derive(Serialize)]
struct SortLink {
    href: String,
    /// `ascending`, `descending` or empty when the list is not sorted by it.
    state: &'static str,
}

#[derive(Serialize)]
struct Choice {
    id: i64,
    name: String,
}

/// The list's filters from its URL ([`crate::users_query`], page names).
pub(super) fn parse_query(
    p: &Params,
    settings: &crate::state::Settings,
) -> Result<UserQuery, WebError> {
    use crate::users_query::{read, Dialect, OrgRef};
    let requested = read(p.pairs(), Dialect::Page, settings).map_err(WebError::validation)?;
    let mut q = requested.query;
    q.organization = match requested.organization {
        Some(OrgRef::Id(id)) => Some(id),
        _ => None,
    };
    // A service by id, from the filter's select (an unknown one matches nobody).
    q.service = p.int("service")?;
    Ok(q)
}

pub async fn list(req: HttpRequest, state: State, admin: Admin) -> Result<HttpResponse, WebError> {
    let p = Params::query(&req);
    let query = parse_query(&p, state.settings())?;
    let actor = admin.actor.clone();
    let columns = state.settings().extensions.columns();
    let tags_on = !state
        .settings()
        .disabled_parts
        .contains(&crate::parts::Part::Tags);
    let column_labels: Vec<String> = columns.iter().map(|c| c.label.clone()).collect();
    let groups_for = query.organization;
    let licences_for = query
        .organization
        .filter(|_| !state.settings().licences.is_empty());
    let (
        page,
        orgs,
        all_tags,
        roles,
        user_tags,
        ext_cells,
        mfa_on,
        (services, user_services, mut held, (org_groups, mut user_groups)),
    ) = state
        .db(move |conn| {
            let page = query.run(conn, &actor)?;
            let orgs = organizations::list(conn, &actor)?;
            let ids: Vec<i64> = page.items.iter().map(|u| u.id).collect();
            let roles = core_users::roles_of_many(conn, &ids)?;
            let (all_tags, user_tags) = if tags_on {
                (tags::list(conn)?, tags::tags_of_many(conn, &ids)?)
            } else {
                Default::default()
            };
            // Each extension column loads the whole page at once.
            let ext_cells = columns
                .iter()
                .map(|c| (c.load)(conn, &ids))
                .collect::<Result<Vec<_>, _>>()?;
            let mfa_on = frontdesk_core::mfa::enabled_among(conn, &ids)?;
            let services = (
                frontdesk_core::services::list(conn)?,
                frontdesk_core::services::slugs_among(conn, &ids)?,
                match licences_for {
                    Some(org) => {
                        frontdesk_core::licences::effective_of_users(conn, Some(org), &ids)?
                    }
                    None => Default::default(),
                },
                // Filtered to one organization: its groups (for the filter,
                // the column and the bulk actions) and each user's there.
                match groups_for {
                    Some(org) => match frontdesk_core::groups::list(conn, &actor, org) {
                        Ok(all) => (
                            all,
                            frontdesk_core::groups::of_users(conn, Some(org), &ids)?,
                        ),
                        Err(CoreError::Forbidden | CoreError::NotFound(_)) => Default::default(),
                        Err(e) => return Err(e),
                    },
                    None => Default::default(),
                },
            );
            Ok::<_, CoreError>((
                page, orgs, all_tags, roles, user_tags, ext_cells, mfa_on, services,
            ))
        })
        .await?;
    let org_names: HashMap<i64, &str> = orgs.iter().map(|o| (o.id, o.name.as_str())).collect();
    let visible = admin.scope();
    let one_org = p.int("org")?;
    let a = &admin.actor;
    let listed: Vec<&frontdesk_core::profile::ProfileField> = state
        .settings()
        .import
        .profile_fields
        .iter()
        .filter(|f| f.list_column)
        .collect();
    let rows: Vec<Row> = page
        .items
        .iter()
        .map(|u| {
            let all_roles: Vec<(i64, OrgRole)> = roles
                .iter()
                .filter(|(uid, _, _)| *uid == u.id)
                .map(|(_, org, role)| (*org, *role))
                .collect();
            let target = Target::User {
                id: u.id,
                staff_role: u.staff_role(),
                orgs: all_roles.clone(),
            };
            Row {
                id: u.id,
                name: u.name(),
                email: u.email.clone(),
                staff_role: u.staff_role.clone(),
                organizations: all_roles
                    .iter()
                    .filter(|(org, _)| visible.as_ref().is_none_or(|v| v.contains(org)))
                    .map(|(org, role)| OrgBadge {
                        name: org_names.get(org).copied().unwrap_or("?").to_owned(),
                        role: role.as_str(),
                    })
                    .collect(),
                org_admin: one_org.is_some_and(|o| {
                    all_roles
                        .iter()
                        .any(|(org, r)| *org == o && matches!(r, OrgRole::Admin | OrgRole::Owner))
                }),
                tags: user_tags
                    .iter()
                    .filter(|(uid, _)| *uid == u.id)
                    .map(|(_, t)| t.name.clone())
                    .collect(),
                status: u.account_status().as_str().to_owned(),
                email_verified: u.email_verified,
                suspended: u.is_suspended(),
                suspended_until: u.suspended_until.map(super::show_time),
                last_login: show_opt(u.last_login_at),
                last_active: show_opt(u.last_active_at),
                services: user_services.get(&u.id).cloned().unwrap_or_default(),
                groups: user_groups
                    .remove(&u.id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(_, name)| name)
                    .collect(),
                licences: held
                    .remove(&u.id)
                    .into_iter()
                    .flat_map(|by_org| by_org.into_values().flatten())
                    .map(|e| LicenceCell {
                        sources: e
                            .sources
                            .iter()
                            .map(|s| match s {
                                frontdesk_core::licences::Source::Direct => "direct".to_owned(),
                                frontdesk_core::licences::Source::Group { group_name, .. } => {
                                    format!("via {group_name}")
                                }
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                        name: e.name,
                    })
                    .collect(),
                local_login: u.local_login_enabled,
                mfa: mfa_on.contains(&u.id),
                created_at: super::show_time(u.created_at),
                ext: ext_cells
                    .iter()
                    .map(|cells| cells.get(&u.id).cloned().unwrap_or_default())
                    .collect(),
                profile: {
                    let values = u.profile_map();
                    listed
                        .iter()
                        .map(|f| {
                            values
                                .get(&f.key)
                                .map(frontdesk_core::profile::ProfileField::display)
                                .unwrap_or_default()
                        })
                        .collect()
                },
                may: RowActions {
                    suspend: can(a, Action::Suspend, &target),
                    // The reset handler refuses these two; the menu does not offer it.
                    password_reset: can(a, Action::Edit, &target)
                        && !u.is_suspended()
                        && u.local_login_enabled,
                    delete: can(a, Action::Delete, &target),
                },
            }
        })
        .collect();
    let may_invite = orgs.iter().any(|o| {
        can(
            a,
            Action::GrantOrgRole(OrgRole::Member),
            &Target::Organization(o.id),
        )
    });
    // Only an organization the admin can see gets its admin column.
    let filtered_org = one_org.and_then(|o| org_names.get(&o).map(|n| (*n).to_owned()));

    let base = format!("{}/users", state.settings().admin_prefix);
    let keep = p.pairs_without(&["page"]);
    let page_link = |n: i64| {
        if keep.is_empty() {
            format!("{base}?page={n}")
        } else {
            format!("{base}?{keep}&page={n}")
        }
    };
    let pages = page.pages();
    let keep_sort = p.pairs_without(&["page", "sort", "dir"]);
    let sort_link = |key: &str| {
        let current = p.get("sort").unwrap_or("created") == key;
        let ascending = p.get("dir") == Some("asc");
        // A click on the current column turns its order round; on another
        // column it starts descending (newest, or Z first), as before.
        let dir = if current && !ascending { "asc" } else { "desc" };
        let sep = if keep_sort.is_empty() { "" } else { "&" };
        SortLink {
            href: format!("{base}?{keep_sort}{sep}sort={key}&dir={dir}"),
            state: match (current, ascending) {
                (false, _) => "",
                (true, true) => "ascending",
                (true, false) => "descending",
            },
        }
    };
    let mut ctx = Context::new();
    ctx.insert("rows", &rows);
    ctx.insert(
        "licence_column",
        &(licences_for.is_some() && filtered_org.is_some()),
    );
    if page.total_is_exact {
        ctx.insert("total", &page.total);
    } else {
        // "100,000+": the count stopped at the cap.
        ctx.insert("total", &thousands(page.total));
    }
    ctx.insert("total_is_exact", &page.total_is_exact);
    ctx.insert("page", &page.page);
    ctx.insert("pages", &pages);
    ctx.insert(
        "prev_link",
        &(page.page > 1).then(|| page_link(page.page - 1)),
    );
    ctx.insert(
        "next_link",
        // Past a capped count ("100,000+") a full page means there may be more.
        &(page.page < pages || (!page.total_is_exact && page.items.len() as i64 == page.limit))
            .then(|| page_link(page.page + 1)),
    );
    let sorts: HashMap<&str, SortLink> = ["name", "email", "created", "last_login", "last_active"]
        .into_iter()
        .map(|k| (k, sort_link(k)))
        .collect();
    ctx.insert("sort_links", &sorts);
    ctx.insert("may_invite", &may_invite);
    ctx.insert("ext_columns", &column_labels);
    ctx.insert(
        "profile_columns",
        &listed.iter().map(|f| f.label.clone()).collect::<Vec<_>>(),
    );
    ctx.insert(
        "filter_selects",
        &crate::user_filters::selects(state.settings(), |name| p.get(name).map(str::to_owned)),
    );
    ctx.insert(
        "ext_bulk",
        &state
            .settings()
            .extensions
            .bulk_actions()
            .into_iter()
            .map(|(key, b)| (key, b.label))
            .collect::<Vec<_>>(),
    );
    ctx.insert("filtered_org", &filtered_org);
    ctx.insert("group_column", &filtered_org.is_some());
    ctx.insert(
        "org_groups",
        &org_groups
            .iter()
            .map(|g| Choice {
                id: g.id,
                name: g.name.clone(),
            })
            .collect::<Vec<_>>(),
    );
    ctx.insert("f_group", &p.int("group")?);
    ctx.insert(
        "bulk_licences",
        &if filtered_org.is_some() {
            state
                .settings()
                .licences
                .iter()
                .map(|l| (l.key.clone(), l.name.clone()))
                .collect::<Vec<_>>()
        } else {
            Vec::new()
        },
    );
    ctx.insert("return_query", &p.pairs_without(&[]));
    ctx.insert(
        "organizations",
        &orgs
            .iter()
            .map(|o| Choice {
                id: o.id,
                name: o.name.clone(),
            })
            .collect::<Vec<_>>(),
    );
    ctx.insert(
        "tags",
        &all_tags
            .iter()
            .map(|t| Choice {
                id: t.id,
                name: t.name.clone(),
            })
            .collect::<Vec<_>>(),
    );
    // The filter form shows what the URL asked for.
    let f: HashMap<&str, String> = [
        "q",
        "status",
        "staff",
        "org",
        "org_role",
        "created_from",
        "created_to",
        "last_login",
        "last_from",
        "last_to",
        "mfa",
        "active_days",
        "inactive_days",
        "sort",
        "dir",
        "limit",
    ]
    .into_iter()
    .map(|k| (k, p.text(k)))
    .collect();
    ctx.insert("f", &f);
    ctx.insert("f_org", &p.int("org")?);
    ctx.insert(
        "services",
        &services
            .iter()
            .map(|s| Choice {
                id: s.id,
                name: s.name.clone(),
            })
            .collect::<Vec<_>>(),
    );
    ctx.insert("f_service", &p.int("service")?);
    ctx.insert("tags_all", &p.ids("tags_all")?);
    ctx.insert("tags_any", &p.ids("tags_any")?);
    ctx.insert("tags_none", &p.ids("tags_none")?);
    render(&req, &state, &admin, "admin/users.html", "users", ctx)
}

/// What a bulk action does to each selected user.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BulkAction {
    Suspend,
    Restore,
    AllowLocal,
    DisableLocal,
    AddTag,
    RemoveTag,
    RevokeSessions,
    Delete,
    AddToGroup,
    RemoveFromGroup,
    AssignLicence,
    UnassignLicence,
}

impl BulkAction {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "suspend" => BulkAction::Suspend,
            "restore" => BulkAction::Restore,
            "allow_local_login" => BulkAction::AllowLocal,
            "disable_local_login" => BulkAction::DisableLocal,
            "add_tag" => BulkAction::AddTag,
            "remove_tag" => BulkAction::RemoveTag,
            "revoke_sessions" => BulkAction::RevokeSessions,
            "delete" => BulkAction::Delete,
            "add_to_group" => BulkAction::AddToGroup,
            "remove_from_group" => BulkAction::RemoveFromGroup,
            "assign_licence" => BulkAction::AssignLicence,
            "unassign_licence" => BulkAction::UnassignLicence,
            _ => return None,
        })
    }

    fn done(self, n: usize) -> String {
        let what = match self {
            BulkAction::Suspend => "suspended",
            BulkAction::Restore => "restored",
            BulkAction::AllowLocal => "allowed to sign in with a password",
            BulkAction::DisableLocal => "no longer allowed to sign in with a password",
            BulkAction::AddTag => "tagged",
            BulkAction::RemoveTag => "untagged",
            BulkAction::RevokeSessions => "signed out everywhere",
            BulkAction::Delete => "deleted",
            BulkAction::AddToGroup => "added to the group",
            BulkAction::RemoveFromGroup => "taken out of the group",
            BulkAction::AssignLicence => "given the licence",
            BulkAction::UnassignLicence => "no longer given the licence directly",
        };
        format!("{n} user(s) {what}.")
    }
}

/// The list URL to go back to, rebuilt from the parsed filters (never a raw
/// string from the form, so it cannot point elsewhere).
pub(super) fn back_to(state: &State, form: &Params) -> String {
    let q = Params::parse(form.get("return").unwrap_or("").as_bytes()).pairs_without(&[]);
    let base = format!("{}/users", state.settings().admin_prefix);
    if q.is_empty() {
        base
    } else {
        format!("{base}?{q}")
    }
}

pub async fn bulk(
    req: HttpRequest,
    state: State,
    admin: Admin,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let to = back_to(&state, &form);
    let ids = form.ids("ids")?;
    if ids.is_empty() {
        return Ok(redirect(&state, &to, "error", "Select at least one user."));
    }
    if ids.len() > MAX_BULK {
        return Ok(redirect(
            &state,
            &to,
            "error",
            &format!("Select at most {MAX_BULK} users at once."),
        ));
    }
    if let Some(ext) = form
        .get("action")
        .and_then(|a| state.settings().extensions.bulk_action(a))
    {
        let key = form.text("action");
        let actor = admin.actor.clone();
        let label = ext.label.clone();
        let n = ids.len();
        let result = state
            .db(move |conn| crate::extensions::run_bulk(conn, &actor, &key, &ext, &ids))
            .await;
        return finish(&state, result, &to, |_| format!("{label}: {n} user(s)."));
    }
    // Email verification: each user checked (`Edit`) and audited by the core.
    let verification = match form.get("action") {
        Some("verify_email") => Some(false),
        Some("resend_verification") => Some(true),
        _ => None,
    };
    if let Some(send) = verification {
        let actor = admin.actor.clone();
        let st = state.get_ref().clone();
        let n = ids.len();
        let result = state
            .db(move |conn| super::verification::bulk(conn, &st, &actor, &ids, send))
            .await;
        if send && result.is_ok() {
            state.wake_mailer();
        }
        return finish(&state, result, &to, |_| {
            if send {
                format!("A new verification mail is on its way to {n} user(s).")
            } else {
                format!("{n} user(s) marked verified.")
            }
        });
    }
    let Some(action) = form.get("action").and_then(BulkAction::parse) else {
        return Ok(redirect(&state, &to, "error", "Choose an action."));
    };
    if matches!(action, BulkAction::AddTag | BulkAction::RemoveTag)
        && state
            .settings()
            .disabled_parts
            .contains(&crate::parts::Part::Tags)
    {
        return Err(WebError::not_found());
    }
    if action == BulkAction::Delete && form.get("confirm") != Some("delete") {
        return confirm_delete(&req, &state, &admin, ids, &form).await;
    }
    let reason = form.text("reason");
    if action == BulkAction::Suspend && reason.is_empty() {
        return Ok(redirect(
            &state,
            &to,
            "error",
            "Give a reason for the suspension.",
        ));
    }
    let until = if action == BulkAction::Suspend {
        match core_users::suspension_end(form.get("days"), form.get("until")) {
            Ok(u) => u,
            Err(e) => return Ok(redirect(&state, &to, "error", &WebError::from(e).detail)),
        }
    } else {
        None
    };
    let tag = form.int("tag")?;
    if matches!(action, BulkAction::AddTag | BulkAction::RemoveTag) && tag.is_none() {
        return Ok(redirect(&state, &to, "error", "Choose a tag."));
    }
    let group = form.int("group")?;
    if matches!(action, BulkAction::AddToGroup | BulkAction::RemoveFromGroup) && group.is_none() {
        return Ok(redirect(&state, &to, "error", "Choose a group."));
    }
    // A licence is given in the organization the list is filtered to.
    let licence = match action {
        BulkAction::AssignLicence | BulkAction::UnassignLicence => {
            let org = Params::parse(form.get("return").unwrap_or("").as_bytes()).int("org")?;
            let key = state
                .settings()
                .licences
                .iter()
                .find(|l| Some(l.key.as_str()) == form.get("licence"))
                .map(|l| l.key.clone());
            match (org, key) {
                (Some(org), Some(key)) => Some((org, key)),
                (None, _) => {
                    return Ok(redirect(
                        &state,
                        &to,
                        "error",
                        "Filter the list to one organization first.",
                    ))
                }
                (_, None) => return Ok(redirect(&state, &to, "error", "Choose a licence.")),
            }
        }
        _ => None,
    };
    let change = match action {
        BulkAction::Suspend => BulkChange::Suspend { reason, until },
        BulkAction::Restore => BulkChange::Restore,
        BulkAction::AllowLocal => BulkChange::SetLocalLogin(true),
        BulkAction::DisableLocal => BulkChange::SetLocalLogin(false),
        BulkAction::AddTag => BulkChange::AddTag(tag.unwrap_or_default()),
        BulkAction::RemoveTag => BulkChange::RemoveTag(tag.unwrap_or_default()),
        BulkAction::RevokeSessions => BulkChange::RevokeSessions,
        BulkAction::Delete => BulkChange::Delete,
        BulkAction::AddToGroup => BulkChange::AddToGroup(group.unwrap_or_default()),
        BulkAction::RemoveFromGroup => BulkChange::RemoveFromGroup(group.unwrap_or_default()),
        BulkAction::AssignLicence | BulkAction::UnassignLicence => {
            let (org, key) = licence.unwrap_or_default();
            if action == BulkAction::AssignLicence {
                BulkChange::AssignLicence { org, key }
            } else {
                BulkChange::UnassignLicence { org, key }
            }
        }
    };
    let actor = admin.actor.clone();
    let n = ids.len();
    let result = state
        .db(move |conn| core_users::bulk::apply(conn, &actor, &ids, &change))
        .await;
    // One refused user (not visible, not allowed) refuses the whole action.
    finish(&state, result, &to, |_| action.done(n))
}

/// The confirmation step of a bulk delete: who goes, and what goes with them.
async fn confirm_delete(
    req: &HttpRequest,
    state: &State,
    admin: &Admin,
    ids: Vec<i64>,
    form: &Params,
) -> Result<HttpResponse, WebError> {
    let actor = admin.actor.clone();
    let users = state
        .db(move |conn| {
            ids.iter()
                .map(|&id| {
                    core_users::get_for(conn, &actor, id, frontdesk_core::Action::View).map(|u| {
                        Choice {
                            id: u.id,
                            name: format!("{} <{}>", u.name(), u.email),
                        }
                    })
                })
                .collect::<Result<Vec<_>, CoreError>>()
        })
        .await?;
    let mut ctx = Context::new();
    ctx.insert("users", &users);
    ctx.insert("return_query", &form.text("return"));
    render(req, state, admin, "admin/users_delete.html", "users", ctx)
}

/// 100000 → "100,000".
fn thousands(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits_by_three() {
        assert_eq!(super::thousands(100_000), "100,000");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(0), "0");
    }
}
