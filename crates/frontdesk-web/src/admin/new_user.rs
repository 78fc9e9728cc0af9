//! "New user": an admin creates an account (email, names, typed profile
//! values, an organization and role, a staff role when they may grant one).
//! The rules, the audit and the set-password mail are the core's
//! (`users::create`); this page shows its refusals next to their fields.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::authz::{can, Action, Target};
use frontdesk_core::outbox::NewMail;
use frontdesk_core::profile::ProfileKind;
use frontdesk_core::users::create::{self as create_user, NewAccount, Welcome};
use frontdesk_core::{organizations, CoreError, CoreResult, OrgRole, StaffRole};
use serde::Serialize;
use serde_json::{Map, Value};
use tera::Context;

use super::{redirect, render_status, verify, Admin, Params, State};
use crate::error::WebError;
use crate::state::FrontdeskState;

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

/// What the form offers this admin: organizations they may add members to
/// (with the roles they may grant), whether an account may have no
/// organization, and whether staff roles may be given.
struct Offer {
    orgs: Vec<(i64, String)>,
    /// The groups of those organizations: (id, "Organization — Group").
    groups: Vec<(i64, String)>,
    roles: Vec<&'static str>,
    without_org: bool,
    staff_roles: bool,
}

async fn offer(state: &State, admin: &Admin) -> Result<Offer, WebError> {
    let actor = admin.actor.clone();
    let (orgs, all_groups) = state
        .db(move |conn| {
            let orgs = organizations::list(conn, &actor)?;
            let groups = offered_groups(conn, &actor, &orgs)?;
            Ok::<_, CoreError>((orgs, groups))
        })
        .await?;
    let a = &admin.actor;
    let may =
        |org: i64, role: OrgRole| can(a, Action::GrantOrgRole(role), &Target::Organization(org));
    let orgs: Vec<(i64, String)> = orgs
        .iter()
        .filter(|o| may(o.id, OrgRole::Member))
        .map(|o| (o.id, o.name.clone()))
        .collect();
    let groups = group_choices(&orgs, &all_groups);
    let roles = OrgRole::ALL
        .iter()
        .filter(|r| orgs.iter().any(|(o, _)| may(*o, **r)))
        .map(|r| r.as_str())
        .collect();
    Ok(Offer {
        roles,
        groups,
        orgs,
        without_org: can(a, Action::ManageSite, &Target::Site),
        staff_roles: can(a, Action::GrantStaffRole, &Target::Site),
    })
}

/// The groups of those of `orgs` whose groups the actor may change.
pub(super) fn offered_groups(
    conn: &mut frontdesk_core::DbConnection,
    actor: &frontdesk_core::Actor,
    orgs: &[organizations::Organization],
) -> CoreResult<Vec<frontdesk_core::groups::Group>> {
    let may_add: Vec<i64> = orgs
        .iter()
        .filter(|o| can(actor, Action::Edit, &Target::Organization(o.id)))
        .map(|o| o.id)
        .collect();
    frontdesk_core::groups::in_organizations(conn, &may_add)
}

/// Groups as the forms offer them: each labelled with its organization
/// (the form's organization must match; the core refuses any other).
pub(super) fn group_choices(
    orgs: &[(i64, String)],
    groups: &[frontdesk_core::groups::Group],
) -> Vec<(i64, String)> {
    groups
        .iter()
        .filter_map(|g| {
            let (_, org) = orgs.iter().find(|(o, _)| *o == g.organization_id)?;
            Some((g.id, format!("{org} — {}", g.name)))
        })
        .collect()
}

/// The form, blank or refilled with `form` and its error (`fields` names
/// the inputs the error is about).
async fn show(
    req: &HttpRequest,
    state: &State,
    admin: &Admin,
    status: StatusCode,
    form: &Params,
    error: Option<String>,
    fields: Vec<String>,
) -> Result<HttpResponse, WebError> {
    let offer = offer(state, admin).await?;
    if offer.orgs.is_empty() && !offer.without_org {
        return Err(WebError::forbidden("You may not create users."));
    }
    let typed: Vec<TypedField> = state
        .settings()
        .import
        .profile_fields
        .iter()
        .map(|d| {
            let value = form.text(&format!("profile.{}", d.key));
            TypedField {
                key: d.key.clone(),
                label: d.label.clone(),
                kind: d.kind.name(),
                choices: d.choices().to_vec(),
                required: d.required,
                help: d.help.clone().unwrap_or_default(),
                checked: value == "yes",
                value,
            }
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("organizations", &offer.orgs);
    ctx.insert("roles", &offer.roles);
    ctx.insert("groups", &offer.groups);
    ctx.insert("chosen_groups", &form.ids("groups").unwrap_or_default());
    ctx.insert("without_org", &offer.without_org);
    ctx.insert(
        "staff_roles",
        &if offer.staff_roles {
            StaffRole::ALL.iter().map(|r| r.as_str()).collect()
        } else {
            Vec::new()
        },
    );
    ctx.insert("typed_profile", &typed);
    for key in [
        "email",
        "first_name",
        "last_name",
        "organization",
        "role",
        "staff_role",
    ] {
        ctx.insert(key, &form.text(key));
    }
    ctx.insert("error", &error);
    ctx.insert("error_fields", &fields);
    render_status(
        req,
        state,
        admin,
        "admin/user_new.html",
        "users",
        status,
        &mut ctx,
    )
}

/// `GET /admin/users/new`.
pub async fn page(req: HttpRequest, state: State, admin: Admin) -> Result<HttpResponse, WebError> {
    show(
        &req,
        &state,
        &admin,
        StatusCode::OK,
        &Params::parse(b""),
        None,
        Vec::new(),
    )
    .await
}

/// The form field an error is about (`profile.<key>` for a profile field).
fn field_of(e: &WebError) -> Vec<String> {
    e.errors
        .iter()
        .map(|f| match f.field.as_str() {
            "organization_id" => "organization".to_owned(),
            other => other.to_owned(),
        })
        .collect()
}

/// `POST /admin/users/new`.
pub async fn submit(
    req: HttpRequest,
    state: State,
    admin: Admin,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let retry = |status: StatusCode, error: String, fields: Vec<String>| {
        show(&req, &state, &admin, status, &form, Some(error), fields)
    };
    let organization = match form.int("organization") {
        Ok(o) => o,
        Err(e) => {
            return retry(
                StatusCode::BAD_REQUEST,
                e.detail,
                vec!["organization".into()],
            )
            .await
        }
    };
    let role = match (organization, form.get("role")) {
        (None, _) => None,
        (Some(_), None) => Some(OrgRole::Member),
        (Some(_), Some(r)) => match OrgRole::parse(r) {
            Some(r) => Some(r),
            None => {
                return retry(
                    StatusCode::BAD_REQUEST,
                    "Choose a role: member, admin or owner.".into(),
                    vec!["role".into()],
                )
                .await
            }
        },
    };
    let staff_role = match form.get("staff_role") {
        None => None,
        Some(r) => match StaffRole::parse(r) {
            Some(r) => Some(r),
            None => {
                return retry(
                    StatusCode::BAD_REQUEST,
                    "Choose a staff role: viewer, admin or owner, or none.".into(),
                    vec!["staff_role".into()],
                )
                .await
            }
        },
    };
    let groups = match form.ids("groups") {
        Ok(g) => g,
        Err(e) => return retry(StatusCode::BAD_REQUEST, e.detail, vec!["groups".into()]).await,
    };
    let mut profile = Map::new();
    for d in &state.settings().import.profile_fields {
        let name = format!("profile.{}", d.key);
        match d.kind {
            ProfileKind::Boolean => {
                profile.insert(d.key.clone(), Value::Bool(form.get(&name) == Some("yes")));
            }
            _ => {
                if let Some(v) = form.get(&name) {
                    profile.insert(d.key.clone(), Value::String(v.to_owned()));
                }
            }
        }
    }
    let new = NewAccount {
        email: form.text("email"),
        first_name: form.text("first_name"),
        last_name: form.text("last_name"),
        display_name: None,
        profile,
        organization: organization.zip(role),
        staff_role,
        groups,
    };
    let actor = admin.actor.clone();
    let st = state.get_ref().clone();
    let result = state
        .db(move |conn| {
            create_user::create(
                conn,
                &actor,
                &st.settings().import.profile_fields,
                &new,
                st.settings().invitation_ttl,
                |w| welcome_mail(&st, w),
            )
            .map_err(created_error)
        })
        .await;
    match result {
        Ok(created) => {
            state.wake_mailer();
            let to = format!(
                "{}/users/{}",
                state.settings().admin_prefix,
                created.user.id
            );
            Ok(redirect(
                &state,
                &to,
                "ok",
                &format!(
                    "{} created; a mail asks them to choose a password.",
                    created.user.email
                ),
            ))
        }
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let mut fields = field_of(&e);
            if e.status == StatusCode::FORBIDDEN && fields.is_empty() {
                fields = vec![if organization.is_some() {
                    "role"
                } else {
                    "organization"
                }
                .into()];
            }
            let status = e.status;
            let detail = match status {
                StatusCode::FORBIDDEN => {
                    "You may not create this user: choose an organization and role you may grant."
                        .to_owned()
                }
                _ => e.detail,
            };
            retry(status, detail, fields).await
        }
        Err(e) => Err(e),
    }
}

/// The core's refusals as the page and the API answer them: an address the
/// organization does not allow is a 422 on the email field; a taken one a 409.
pub fn created_error(e: CoreError) -> WebError {
    match e {
        CoreError::DomainNotAllowed => {
            let mut w = WebError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Unprocessable Entity",
                "The organization does not allow email addresses in this domain.",
            );
            w.errors = vec![crate::error::FieldError::new("email", w.detail.clone())];
            w
        }
        CoreError::DuplicateEmail(email) => {
            let mut w = WebError::new(
                StatusCode::CONFLICT,
                "Conflict",
                format!("A user with the email {email} already exists."),
            );
            w.errors = vec![crate::error::FieldError::new("email", "is taken already")];
            w
        }
        other => WebError::from(other),
    }
}

/// The mail a created user gets (templates `auth/account_created_email.*`):
/// the link to choose a password, and the organization they were added to.
pub fn welcome_mail(state: &FrontdeskState, w: &Welcome<'_>) -> CoreResult<NewMail> {
    let mut ctx = state.context();
    ctx.insert(
        "link",
        &state.absolute_url(&format!(
            "{}/password-reset/{}",
            state.prefix(),
            w.token.expose()
        )),
    );
    ctx.insert("name", &w.user.name());
    ctx.insert("email", &w.user.email);
    ctx.insert("organization", &w.organization.map(|(o, _)| o.name.clone()));
    ctx.insert("role", &w.organization.map(|(_, r)| r.as_str()));
    ctx.insert(
        "expires_at",
        &w.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    );
    let render = |n: &str| {
        state
            .render(n, &ctx)
            .map_err(|e| CoreError::Config(e.detail))
    };
    let site = &state.settings().site_name;
    Ok(NewMail {
        kind: "account_created".into(),
        recipient: w.user.email.clone(),
        subject: match w.organization {
            Some((o, _)) => format!("You were added to {} on {site}", o.name),
            None => format!("Your {site} account: choose a password"),
        },
        text_body: render("auth/account_created_email.txt")?,
        html_body: Some(render("auth/account_created_email.html")?),
        invitation_id: None,
    })
}
