//! The users query of `GET /users` and the export: its OpenAPI description
//! and the reader (shared with the pages through [`crate::users_query`]).

use chrono::{DateTime, Utc};
use frontdesk_core::users::query::UserQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::params::Params;
use crate::api::problem::ApiResult;
use crate::error::WebError;

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
pub enum MfaParam {
    On,
    Off,
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
    /// Only members of this group (its id; with `organization`, a group of
    /// that organization). None for an unknown group, or one of an
    /// organization the caller cannot see.
    #[param(minimum = 1)]
    group: Option<i64>,
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
    /// `on`: users with a confirmed second factor; `off`: users without.
    #[param(inline)]
    mfa: Option<MfaParam>,
    /// Only users who signed in on this service (its slug or id).
    #[param(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    service_id: Option<String>,
    /// Only users active (`last_active_at`) in the last N days.
    #[param(minimum = 1, maximum = 3650)]
    active_days: Option<i64>,
    /// Only users not active for N days (or never).
    #[param(minimum = 1, maximum = 3650)]
    inactive_days: Option<i64>,
    #[param(inline)]
    sort: Option<SortParam>,
    #[param(inline)]
    dir: Option<DirParam>,
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
}

/// The query a request asks for, with the organization still a slug.
pub(crate) struct Requested {
    pub(crate) query: UserQuery,
    pub(crate) organization: Option<String>,
    /// The filters contradict each other: the answer is an empty page.
    pub(crate) empty: bool,
    /// `service_id`: a service's slug or id, resolved by [`service_filter`].
    pub(crate) service: Option<String>,
}

/// The service a `service_id` names (slug or id); an unknown one is a 400
/// naming the parameter.
pub(crate) fn service_filter(
    conn: &mut frontdesk_core::DbConnection,
    raw: Option<&str>,
) -> Result<Option<i64>, WebError> {
    let Some(raw) = raw else { return Ok(None) };
    match frontdesk_core::services::find(conn, raw).map_err(frontdesk_core::CoreError::from)? {
        Some(s) => Ok(Some(s.id)),
        None => Err(WebError::validation(vec![crate::error::FieldError::new(
            "service_id",
            "is not a service of this app (give its slug or id)",
        )])),
    }
}

pub(crate) fn parse_list(
    query_string: &str,
    settings: &crate::state::Settings,
) -> ApiResult<Requested> {
    parse_query(query_string, &["service_id"], settings).map(|(mut r, extra)| {
        r.service = extra.into_iter().next().flatten();
        r
    })
}

/// The users query ([`crate::users_query`], API names), plus `extra` text
/// parameters (such as an export's `fields`). Unknown and repeated
/// parameters are refused by name.
pub(crate) fn parse_query(
    query_string: &str,
    extra: &[&str],
    settings: &crate::state::Settings,
) -> ApiResult<(Requested, Vec<Option<String>>)> {
    use crate::users_query::{names, read, Dialect, OrgRef};
    let mut known = names(Dialect::Api, settings);
    known.extend(extra.iter().map(|e| (*e).to_owned()));
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    // Arrays may come comma-separated or as repeated keys.
    let lists = ["tags_all", "tags_any", "tags_none", "fields"];
    let mut p = Params::parse_with_lists(query_string, &known, &lists);
    let extras: Vec<Option<String>> = extra.iter().map(|e| p.text(e, 2000)).collect();
    let requested = match read(p.pairs(), Dialect::Api, settings) {
        Ok(r) => Some(r),
        Err(errors) => {
            p.extend_errors(errors);
            None
        }
    };
    p.finish()?;
    let Some(r) = requested else {
        return Err(WebError::bad_request("invalid users query").into());
    };
    let organization = match r.organization {
        Some(OrgRef::Slug(s)) => Some(s),
        _ => None,
    };
    Ok((
        Requested {
            query: r.query,
            organization,
            empty: r.empty,
            service: None,
        },
        extras,
    ))
}
