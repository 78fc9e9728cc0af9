//! `/users`: the users query as query parameters, detail, update, suspend,
//! restore, delete, and revoking every session of a user.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use frontdesk_core::authz::Action;
use frontdesk_core::sessions::{self, SessionConfig};
use frontdesk_core::users::query::{LastLogin, Page, SortDir, SortKey, StaffFilter, UserQuery};
use frontdesk_core::users::{self, User, UserStatus, UserUpdate};
use frontdesk_core::{organizations, tags, Actor, CoreError, DbConnection, OrgRole, StaffRole};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiActor;
use super::params::{Pagination, Paging, Params};
use super::problem::{check_text, optional_body, ApiResult};
use super::utc;
use crate::error::{FieldError, WebError};
use crate::state::FrontdeskState;

/// A user as the API shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: i64,
    pub email: String,
    pub email_verified: bool,
    pub first_name: String,
    pub last_name: String,
    pub display_name: Option<String>,
    /// Display name, else first and last name, else the email.
    pub name: String,
    /// `pending` (never signed in nor set their own password), `active` or `suspended`.
    #[schema(example = "active")]
    pub status: String,
    pub suspended_reason: Option<String>,
    pub suspended_at: Option<DateTime<Utc>>,
    /// When a timed suspension ends (the user is then restored by itself);
    /// null for an open-ended one or an active user.
    pub suspended_until: Option<DateTime<Utc>>,
    /// `viewer`, `admin`, `owner`, or null for end users.
    pub staff_role: Option<String>,
    pub local_login_enabled: bool,
    /// The user has a confirmed second factor (an authenticator app or a
    /// passkey) and is asked for it after the password.
    pub mfa_enabled: bool,
    /// Host-defined profile fields.
    #[schema(value_type = Object)]
    pub profile: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub last_active_at: Option<DateTime<Utc>>,
    /// The version of the host's terms accepted at sign-up, if any.
    pub terms_version: Option<String>,
    pub terms_accepted_at: Option<DateTime<Utc>>,
}

impl From<&User> for UserOut {
    fn from(u: &User) -> Self {
        UserOut {
            id: u.id,
            email: u.email.clone(),
            email_verified: u.email_verified,
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            display_name: u.display_name.clone(),
            name: u.name(),
            status: u.account_status().as_str().to_owned(),
            suspended_reason: u.suspended_reason.clone(),
            suspended_at: u.suspended_at.map(utc),
            suspended_until: u.suspended_until.map(utc),
            staff_role: u.staff_role.clone(),
            local_login_enabled: u.local_login_enabled,
            mfa_enabled: false,
            profile: u.profile_map(),
            created_at: utc(u.created_at),
            updated_at: utc(u.updated_at),
            last_login_at: u.last_login_at.map(utc),
            last_active_at: u.last_active_at.map(utc),
            terms_version: u.terms_version.clone(),
            terms_accepted_at: u.terms_accepted_at.map(utc),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserOut>,
    pub pagination: Pagination,
}

impl UserOut {
    /// With `mfa_enabled` as stored (one query).
    pub fn load(conn: &mut DbConnection, u: &User) -> Result<Self, CoreError> {
        let mut out = UserOut::from(u);
        out.mfa_enabled = frontdesk_core::mfa::enabled(conn, u.id)?;
        Ok(out)
    }
}

impl UserList {
    /// A page of users; `mfa` holds those of them with a second factor
    /// ([`frontdesk_core::mfa::enabled_among`], one query per page).
    pub fn from_page(page: &Page<User>, mfa: &std::collections::HashSet<i64>) -> Self {
        UserList {
            users: page
                .items
                .iter()
                .map(|u| {
                    let mut out = UserOut::from(u);
                    out.mfa_enabled = mfa.contains(&u.id);
                    out
                })
                .collect(),
            pagination: Pagination {
                page: page.page,
                limit: page.limit,
                total: page.total,
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipOut {
    pub organization_id: i64,
    pub organization_slug: String,
    pub organization_name: String,
    #[schema(example = "member")]
    pub role: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionSummary {
    /// Sessions that can still be used.
    pub active_count: i64,
    /// When the newest of them began.
    pub last_created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagRef {
    pub id: i64,
    pub name: String,
}

/// A second factor of the user: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorOut {
    /// `totp` (an authenticator app) or `passkey`.
    #[schema(example = "totp")]
    pub kind: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A sign-in through an external identity provider (none exist yet).
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkedIdentity {
    pub provider: String,
    pub subject: String,
}

/// A user with memberships, tags and a summary of their sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserOut,
    /// Only organizations the caller may see are listed.
    pub memberships: Vec<MembershipOut>,
    pub tags: Vec<TagRef>,
    pub sessions: SessionSummary,
    /// Empty until single sign-on exists.
    pub linked_identities: Vec<LinkedIdentity>,
    /// Confirmed second factors (kind, name, when added and last used).
    pub mfa_factors: Vec<FactorOut>,
    /// Unused recovery codes left.
    pub mfa_recovery_codes_left: i64,
}

/// The detail of a user the actor has already been allowed to see.
pub fn detail_of(
    conn: &mut DbConnection,
    actor: &Actor,
    user: &User,
    config: &SessionConfig,
) -> Result<UserDetail, CoreError> {
    let visible = actor.visible_orgs();
    let memberships = organizations::memberships_of(conn, user.id)?
        .into_iter()
        .filter(|(m, _)| {
            visible
                .as_ref()
                .is_none_or(|v| v.contains(&m.organization_id))
        })
        .map(|(m, o)| MembershipOut {
            organization_id: o.id,
            organization_slug: o.slug,
            organization_name: o.name,
            role: m.role,
            created_at: utc(m.created_at),
        })
        .collect();
    let tags = tags::tags_of(conn, user.id)?
        .into_iter()
        .map(|t| TagRef {
            id: t.id,
            name: t.name,
        })
        .collect();
    let (active_count, last) = sessions::summary_for_user(conn, user.id, config)?;
    let mfa = frontdesk_core::mfa::summary(conn, user.id)?;
    let mut out = UserOut::from(user);
    out.mfa_enabled = mfa.enabled;
    Ok(UserDetail {
        user: out,
        mfa_factors: mfa
            .factors
            .into_iter()
            .map(|f| FactorOut {
                kind: f.kind,
                name: f.name,
                created_at: utc(f.created_at),
                last_used_at: f.last_used_at.map(utc),
            })
            .collect(),
        mfa_recovery_codes_left: mfa.recovery_codes_left,
        memberships,
        tags,
        sessions: SessionSummary {
            active_count,
            last_created_at: last.map(utc),
        },
        linked_identities: Vec::new(),
    })
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusParam {
    Active,
    Suspended,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StaffParam {
    All,
    Staff,
    NotStaff,
    Viewer,
    Admin,
    Owner,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrgRoleParam {
    Member,
    Admin,
    Owner,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LastLoginParam {
    Never,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortParam {
    Email,
    Name,
    Created,
    LastLogin,
    LastActive,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DirParam {
    Asc,
    Desc,
}

/// The users query. Dates are RFC 3339 (or `YYYY-MM-DD`); ranges include
/// the start and exclude the end.
#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    /// Words matched against email, names and profile fields.
    #[param(max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    search: Option<String>,
    #[param(inline)]
    status: Option<StatusParam>,
    /// Staff filter: any staff role, none, or one role.
    #[param(inline)]
    staff: Option<StaffParam>,
    /// Organization slug: only its members (none for an unknown slug).
    #[param(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    organization: Option<String>,
    /// Only members holding this role (in `organization` when given).
    #[param(inline)]
    org_role: Option<OrgRoleParam>,
    /// Tag ids the user has all of.
    #[param(style = Form, explode = false, max_items = 100)]
    tags_all: Option<Vec<i64>>,
    /// Tag ids the user has at least one of.
    #[param(style = Form, explode = false, max_items = 100)]
    tags_any: Option<Vec<i64>>,
    /// Tag ids the user has none of.
    #[param(style = Form, explode = false, max_items = 100)]
    tags_none: Option<Vec<i64>>,
    created_from: Option<DateTime<Utc>>,
    created_to: Option<DateTime<Utc>>,
    /// `never`: users who never signed in (not with the last_login range).
    #[param(inline)]
    last_login: Option<LastLoginParam>,
    last_login_from: Option<DateTime<Utc>>,
    last_login_to: Option<DateTime<Utc>>,
    #[param(inline)]
    sort: Option<SortParam>,
    #[param(inline)]
    dir: Option<DirParam>,
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
}

const LIST_PARAMS: &[&str] = &[
    "search",
    "status",
    "staff",
    "organization",
    "org_role",
    "tags_all",
    "tags_any",
    "tags_none",
    "created_from",
    "created_to",
    "last_login",
    "last_login_from",
    "last_login_to",
    "sort",
    "dir",
    "page",
    "limit",
];

/// The query a request asks for, with the organization still a slug.
pub(crate) struct Requested {
    pub(crate) query: UserQuery,
    pub(crate) organization: Option<String>,
    /// The filters contradict each other: the answer is an empty page.
    pub(crate) empty: bool,
}

fn parse_list(query_string: &str, settings: &crate::state::Settings) -> ApiResult<Requested> {
    parse_query(query_string, &[], settings).map(|(r, _)| r)
}

/// The users query, plus `extra` text parameters (such as an export's `fields`).
pub(crate) fn parse_query(
    query_string: &str,
    extra: &[&str],
    settings: &crate::state::Settings,
) -> ApiResult<(Requested, Vec<Option<String>>)> {
    let declared = crate::user_filters::param_names(settings);
    let known: Vec<&str> = LIST_PARAMS
        .iter()
        .chain(extra)
        .copied()
        .chain(declared.iter().map(String::as_str))
        .collect();
    let mut p = Params::parse(query_string, &known);
    let extras: Vec<Option<String>> = extra.iter().map(|e| p.text(e, 2000)).collect();
    let Paging { page, limit } = p.paging();
    let search = p.text("search", 200);
    let status = p.choice(
        "status",
        UserStatus::parse_exact,
        &["pending", "active", "suspended"],
    );
    let staff = p
        .choice(
            "staff",
            |v| match v {
                "all" => Some(StaffFilter::All),
                "staff" => Some(StaffFilter::Staff),
                "not_staff" => Some(StaffFilter::NotStaff),
                other => StaffRole::parse_exact(other).map(StaffFilter::Is),
            },
            &["all", "staff", "not_staff", "viewer", "admin", "owner"],
        )
        .unwrap_or_default();
    let organization = p.text("organization", 100);
    let org_role = p.choice(
        "org_role",
        OrgRole::parse_exact,
        &["member", "admin", "owner"],
    );
    let tags_all = p.ids("tags_all");
    let tags_any = p.ids("tags_any");
    let tags_none = p.ids("tags_none");
    let created_from = p.datetime("created_from");
    let created_to = p.datetime("created_to");
    let mut empty = false;
    let never = p
        .choice("last_login", |v| (v == "never").then_some(()), &["never"])
        .is_some();
    let ll_from = p.datetime("last_login_from");
    let ll_to = p.datetime("last_login_to");
    let last_login = match (never, ll_from, ll_to) {
        (true, None, None) => LastLogin::Never,
        // Never signed in, yet signed in within a range: nobody.
        (true, _, _) => {
            empty = true;
            LastLogin::Never
        }
        (false, None, None) => LastLogin::Any,
        (false, from, to) => LastLogin::Between(from, to),
    };
    let sort = p
        .choice(
            "sort",
            |v| match v {
                "email" => Some(SortKey::Email),
                "name" => Some(SortKey::Name),
                "created" => Some(SortKey::Created),
                "last_login" => Some(SortKey::LastLogin),
                "last_active" => Some(SortKey::LastActive),
                _ => None,
            },
            &["email", "name", "created", "last_login", "last_active"],
        )
        .unwrap_or_default();
    let dir = p
        .choice(
            "dir",
            |v| match v {
                "asc" => Some(SortDir::Asc),
                "desc" => Some(SortDir::Desc),
                _ => None,
            },
            &["asc", "desc"],
        )
        .unwrap_or_default();
    let filters: Vec<(String, String)> = declared
        .iter()
        .filter_map(|name| p.text(name, 200).map(|v| (name.clone(), v)))
        .collect();
    let mut query = UserQuery {
        search,
        status,
        staff,
        organization: None,
        org_role,
        tags_all,
        tags_any,
        tags_none,
        created_from,
        created_to,
        last_login,
        profile: Vec::new(),
        conditions: Vec::new(),
        sort,
        dir,
        page,
        limit,
    };
    if let Err(errors) = crate::user_filters::apply(
        settings,
        filters.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &mut query,
    ) {
        for e in errors {
            p.error(&e.field, e.message);
        }
    }
    p.finish()?;
    let requested = Requested {
        query,
        organization,
        empty,
    };
    Ok((requested, extras))
}

/// Exact, lower-case parsing of the role and status names for query
/// parameters (the core parsers also trim and fold case).
trait ParseExact: Sized {
    fn parse_exact(s: &str) -> Option<Self>;
}

macro_rules! parse_exact {
    ($($t:ty),*) => {$(
        impl ParseExact for $t {
            fn parse_exact(s: &str) -> Option<Self> {
                <$t>::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }
    )*};
}
parse_exact!(UserStatus, StaffRole, OrgRole);

/// `GET /users`: the users the caller may see, filtered, sorted, paged.
#[utoipa::path(
    get,
    path = "/users",
    operation_id = "users_list",
    tag = "users",
    params(UserListParams),
    responses((status = 200, description = "A page of users", body = UserList))
)]
pub async fn list(req: HttpRequest, state: web::Data<FrontdeskState>, api: ApiActor) -> ApiResult {
    let requested = parse_list(req.query_string(), state.settings())?;
    let actor = api.actor;
    let page = state
        .db(move |conn| -> Result<UserList, WebError> {
            let mut query = requested.query;
            let nobody = UserList::from_page(
                &Page {
                    items: Vec::new(),
                    page: query.page,
                    limit: query.limit,
                    total: 0,
                },
                &Default::default(),
            );
            if requested.empty || actor.visible_orgs().is_some_and(|o| o.is_empty()) {
                return Ok(nobody);
            }
            if let Some(slug) = requested.organization {
                // An organization the caller cannot see has no users for them,
                // exactly like one that does not exist.
                match super::organizations::visible(conn, &actor, &slug) {
                    Ok(org) => query.organization = Some(org.id),
                    Err(CoreError::NotFound(_)) => return Ok(nobody),
                    Err(e) => return Err(e.into()),
                }
            }
            let page = query.run(conn, &actor)?;
            let ids: Vec<i64> = page.items.iter().map(|u| u.id).collect();
            let mfa = frontdesk_core::mfa::enabled_among(conn, &ids)?;
            Ok(UserList::from_page(&page, &mfa))
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /users/{id}`.
#[utoipa::path(
    get,
    path = "/users/{id}",
    operation_id = "users_get",
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, description = "The user", body = UserDetail))
)]
pub async fn get(state: web::Data<FrontdeskState>, api: ApiActor, id: web::Path<i64>) -> ApiResult {
    let id = id.into_inner();
    let config = state.settings().auth.sessions;
    let detail = state
        .db(move |conn| {
            let user = users::get_for(conn, &api.actor, id, Action::View)?;
            detail_of(conn, &api.actor, &user, &config)
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}

fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Fields to change; those left out stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub first_name: Option<String>,
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub last_name: Option<String>,
    /// null or "" clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub display_name: Option<Option<String>>,
    pub email_verified: Option<bool>,
    /// Replaces the host-defined profile fields.
    #[schema(schema_with = super::openapi::profile_schema)]
    pub profile: Option<Map<String, Value>>,
    pub local_login_enabled: Option<bool>,
}

/// `PATCH /users/{id}`: all changes apply together or none does.
#[utoipa::path(
    patch,
    path = "/users/{id}",
    operation_id = "users_update",
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    request_body = UserPatch,
    responses((status = 200, description = "The updated user", body = UserDetail))
)]
pub async fn update(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
    body: super::problem::Body,
) -> ApiResult {
    let id = id.into_inner();
    let patch: UserPatch = super::problem::object(body)?;
    check_text(&[
        ("first_name", patch.first_name.as_deref(), 100),
        ("last_name", patch.last_name.as_deref(), 100),
        (
            "display_name",
            patch.display_name.as_ref().and_then(|d| d.as_deref()),
            100,
        ),
    ])?;
    if patch
        .profile
        .as_ref()
        .is_some_and(|p| p.len() > super::openapi::MAX_PROFILE_FIELDS)
    {
        return Err(WebError::validation(vec![crate::error::FieldError::new(
            "profile",
            format!("at most {} fields", super::openapi::MAX_PROFILE_FIELDS),
        )])
        .into());
    }
    // The declared fields' one check, before anything is saved.
    let mut patch = patch;
    if let Some(p) = &patch.profile {
        patch.profile = Some(frontdesk_core::profile::validate(
            &state.settings().import.profile_fields,
            p,
        )?);
    }
    let config = state.settings().auth.sessions;
    let detail = state
        .db(move |conn| {
            let actor = &api.actor;
            let user = users::update_with_login(
                conn,
                actor,
                id,
                UserUpdate {
                    first_name: patch.first_name,
                    last_name: patch.last_name,
                    display_name: patch.display_name,
                    email_verified: patch.email_verified,
                    profile: patch.profile,
                },
                patch.local_login_enabled,
            )?;
            detail_of(conn, actor, &user, &config)
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendBody {
    /// Shown to admins; optional.
    #[schema(max_length = 2000, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    #[serde(default)]
    pub reason: String,
    /// Restore the user by themselves after this many days (1 to 3650).
    #[schema(minimum = 1, maximum = 3650)]
    #[serde(default)]
    pub days: Option<i64>,
    /// Restore the user by themselves at this time (RFC 3339, in the
    /// future); not together with `days`. Without either, the suspension
    /// lasts until an admin restores the user.
    #[serde(default)]
    pub suspended_until: Option<DateTime<Utc>>,
}

/// `POST /users/{id}/suspend`: the user can no longer sign in and every
/// session of theirs ends. The body is optional.
#[utoipa::path(
    post,
    path = "/users/{id}/suspend",
    operation_id = "users_suspend",
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    request_body(content = Option<SuspendBody>, description = "Optional reason"),
    responses((status = 200, description = "The suspended user", body = UserDetail))
)]
pub async fn suspend(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
    body: web::Bytes,
) -> ApiResult {
    let id = id.into_inner();
    let SuspendBody {
        reason,
        days,
        suspended_until,
    } = optional_body(&body)?;
    check_text(&[("reason", Some(&reason), 2000)])?;
    let until = match (days, suspended_until) {
        (Some(_), Some(_)) => {
            return Err(WebError::validation(vec![FieldError::new(
                "suspended_until",
                "give days or suspended_until, not both",
            )])
            .into())
        }
        (Some(d), None) => users::suspension_end(Some(&d.to_string()), None).map_err(|_| {
            WebError::validation(vec![FieldError::new(
                "days",
                format!("must be from 1 to {}", users::MAX_SUSPENSION_DAYS),
            )])
        })?,
        (None, u) => u.map(|u| u.naive_utc()),
    };
    let config = state.settings().auth.sessions;
    let detail = state
        .db(move |conn| {
            let user = users::suspend_until(conn, &api.actor, id, &reason, until)?;
            detail_of(conn, &api.actor, &user, &config)
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}

/// `POST /users/{id}/restore`: lifts a suspension.
#[utoipa::path(
    post,
    path = "/users/{id}/restore",
    operation_id = "users_restore",
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, description = "The restored user", body = UserDetail))
)]
pub async fn restore(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
) -> ApiResult {
    let id = id.into_inner();
    let config = state.settings().auth.sessions;
    let detail = state
        .db(move |conn| {
            let user = users::restore(conn, &api.actor, id)?;
            detail_of(conn, &api.actor, &user, &config)
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}

/// `DELETE /users/{id}`: for good, with memberships, tags and sessions.
#[utoipa::path(
    delete,
    path = "/users/{id}",
    operation_id = "users_delete",
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 204, description = "Deleted"))
)]
pub async fn delete(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
) -> ApiResult {
    let id = id.into_inner();
    state
        .db(move |conn| users::delete(conn, &api.actor, id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsRevoked {
    #[schema(example = "All sessions revoked")]
    pub message: String,
    pub sessions_revoked: i64,
}

impl SessionsRevoked {
    pub fn new(n: usize) -> Self {
        SessionsRevoked {
            message: "All sessions revoked".to_owned(),
            sessions_revoked: i64::try_from(n).unwrap_or(i64::MAX),
        }
    }
}

/// `DELETE /users/{id}/sessions`: ends every session of the user.
#[utoipa::path(
    delete,
    path = "/users/{id}/sessions",
    operation_id = "users_revoke_sessions",
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, description = "How many sessions ended", body = SessionsRevoked))
)]
pub async fn revoke_sessions(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
) -> ApiResult {
    let id = id.into_inner();
    let n = state
        .db(move |conn| sessions::revoke_all_by_admin(conn, &api.actor, id))
        .await?;
    Ok(HttpResponse::Ok().json(SessionsRevoked::new(n)))
}
