//! The users query: search, filters, sort and pagination in one builder, used by
//! the admin pages, the JSON API and the export alike.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamp};
use serde::{Deserialize, Serialize};

use super::condition::UserCondition;
use super::counts::{self, CountedSet};
use super::{User, UserStatus};
use crate::authz::{Actor, OrgRole, StaffRole};
use crate::db::{fts_phrase, search_predicate, Backend, BackendKind, DbConnection};
use crate::error::{CoreError, CoreResult};
use crate::profile::ProfileFilter;
use crate::schema::{memberships, mfa_factors, user_tags, users};

/// The sort keys of a row, where the next keyset batch starts.
pub(crate) struct Keyset {
    id: i64,
    email: String,
    first_name: String,
    last_name: String,
    created_at: NaiveDateTime,
    last_login_at: Option<NaiveDateTime>,
    last_active_at: Option<NaiveDateTime>,
}

/// The columns of a user an export can write.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub(crate) struct ExportRow {
    pub id: i64,
    pub email: String,
    pub email_verified: bool,
    pub first_name: String,
    pub last_name: String,
    pub display_name: Option<String>,
    pub local_login_enabled: bool,
    pub staff_role: Option<String>,
    pub status: String,
    pub suspended_reason: Option<String>,
    pub profile: String,
    pub created_at: NaiveDateTime,
    pub last_login_at: Option<NaiveDateTime>,
    /// Read for the keyset of a sort on last activity; not a column an export writes.
    pub last_active_at: Option<NaiveDateTime>,
    /// Read to tell pending from active (the status column shows the account status).
    pub activated_at: Option<NaiveDateTime>,
}

impl ExportRow {
    /// Pending, active or suspended, as [`User::account_status`].
    pub(crate) fn account_status(&self) -> UserStatus {
        match (self.status.as_str(), self.activated_at) {
            ("suspended", _) => UserStatus::Suspended,
            (_, None) => UserStatus::Pending,
            _ => UserStatus::Active,
        }
    }
}

/// Both row types carry the sort keys under the same names.
macro_rules! keyset_from {
    ($row:ty) => {
        impl From<&$row> for Keyset {
            fn from(u: &$row) -> Self {
                Keyset {
                    id: u.id,
                    email: u.email.clone(),
                    first_name: u.first_name.clone(),
                    last_name: u.last_name.clone(),
                    created_at: u.created_at,
                    last_login_at: u.last_login_at,
                    last_active_at: u.last_active_at,
                }
            }
        }
    };
}
keyset_from!(User);
keyset_from!(ExportRow);

/// The keyset loop of [`UserQuery::for_each_batch`], for one row type.
macro_rules! keyset_batches {
    ($query:expr, $conn:expr, $scope:expr, $batch:expr, $f:expr, $row:ty) => {{
        let this = $query;
        let conn: &mut DbConnection = $conn;
        let mut f = $f;
        let kind = conn.kind();
        let batch = $batch.max(1);
        let mut last: Option<Keyset> = None;
        loop {
            let mut q = this.sorted(this.filtered(kind, $scope, false));
            if let Some(after) = &last {
                q = this.after(q, after);
            }
            let rows: Vec<$row> = q
                .select(<$row>::as_select())
                .limit(batch)
                .load(conn)
                .map_err(|e| E::from(CoreError::from(e)))?;
            if rows.is_empty() {
                return Ok(());
            }
            f(conn, &rows)?;
            if (rows.len() as i64) < batch {
                return Ok(());
            }
            last = rows.last().map(Keyset::from);
        }
    }};
}

/// The page size when none is asked for.
pub const DEFAULT_LIMIT: i64 = 50;

/// Sort keys for last sign-in with never-signed-in users last (see `sorted`);
/// each is indexed as written in `crates/frontdesk-core/migrations/*/…_initial/up.sql`.
const LAST_LOGIN_NULLS_LAST_ASC: &str = "COALESCE(users.last_login_at, '9999-12-31 23:59:59')";
const LAST_LOGIN_NULLS_LAST_DESC: &str = "COALESCE(users.last_login_at, '0001-01-01 00:00:00')";
/// The same for last activity (users never seen active sort last), indexed in
/// `crates/frontdesk-core/migrations/*/…_users_last_active_sort/up.sql`.
const LAST_ACTIVE_NULLS_LAST_ASC: &str = "COALESCE(users.last_active_at, '9999-12-31 23:59:59')";
const LAST_ACTIVE_NULLS_LAST_DESC: &str = "COALESCE(users.last_active_at, '0001-01-01 00:00:00')";
/// The largest page size [`UserQuery::validate`] accepts.
pub const MAX_LIMIT: i64 = 100;

/// Which users the query keeps by staff role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffFilter {
    /// Staff and non-staff alike (the default).
    #[default]
    All,
    /// Users with any staff role.
    Staff,
    /// Users without a staff role.
    NotStaff,
    /// Users with exactly this staff role.
    Is(StaffRole),
}

/// The column the users are sorted by; ties are broken by id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// By email address.
    Email,
    /// By last name, then first name.
    Name,
    /// By creation time (the default).
    #[default]
    Created,
    /// By last sign-in; users who never signed in come last.
    LastLogin,
    /// By last activity; users never seen active come last.
    LastActive,
}

/// The sort direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortDir {
    /// Smallest first (A to Z, oldest first).
    Asc,
    /// Largest first (Z to A, newest first); the default.
    #[default]
    Desc,
}

/// Last sign-in filter: a range, or users who never signed in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LastLogin {
    /// No filter (the default).
    #[default]
    Any,
    /// Users who never signed in.
    Never,
    /// Users whose last sign-in is at or after the first time and before the
    /// second; either end may be open.
    Between(Option<NaiveDateTime>, Option<NaiveDateTime>),
}

/// One users query: free-text search, filters, sort and page. Build it with
/// `..Default::default()` and run it with [`UserQuery::run`], which also
/// limits it to the users the actor may see.
#[derive(Debug, Clone)]
pub struct UserQuery {
    /// Free text matched against the email and names, case-insensitively.
    pub search: Option<String>,
    /// Only users with this account status.
    pub status: Option<UserStatus>,
    /// Which users to keep by staff role.
    pub staff: StaffFilter,
    /// Members of this organization (its id).
    pub organization: Option<i64>,
    /// Members with this role (in `organization` when set, else in any).
    pub org_role: Option<OrgRole>,
    /// Users carrying every one of these tags (ids).
    pub tags_all: Vec<i64>,
    /// Users carrying at least one of these tags (ids).
    pub tags_any: Vec<i64>,
    /// Users carrying none of these tags (ids).
    pub tags_none: Vec<i64>,
    /// Created at or after this time.
    pub created_from: Option<NaiveDateTime>,
    /// Created before this time.
    pub created_to: Option<NaiveDateTime>,
    /// The last sign-in filter.
    pub last_login: LastLogin,
    /// Active (`last_active_at`) at or after this time.
    pub active_since: Option<NaiveDateTime>,
    /// Not active since this time (or never active).
    pub inactive_since: Option<NaiveDateTime>,
    /// Signed in on this service (its id) at least once.
    pub service: Option<i64>,
    /// Filters on declared profile fields (`profile.<key>=value`).
    pub profile: Vec<ProfileFilter>,
    /// Further conditions, such as a host's extension filters, run in SQL
    /// for the page and the count.
    pub conditions: Vec<UserCondition>,
    /// Users with (`Some(true)`) or without (`Some(false)`) a confirmed
    /// second factor.
    pub mfa: Option<bool>,
    /// Users holding this licence (key), directly or through a group, in the
    /// filtered organization, else in any organization of the scope.
    pub licence: Option<String>,
    /// Members of this group (its id). Only a group of an organization in
    /// the caller's scope (and of `organization`, when that is set) matches
    /// anyone: another organization's group gives an empty list.
    pub group: Option<i64>,
    /// The sort column.
    pub sort: SortKey,
    /// The sort direction.
    pub dir: SortDir,
    /// 1-based.
    pub page: i64,
    /// Users per page, from 1 to [`MAX_LIMIT`]; [`DEFAULT_LIMIT`] by default.
    pub limit: i64,
}

impl Default for UserQuery {
    fn default() -> Self {
        UserQuery {
            search: None,
            status: None,
            staff: StaffFilter::All,
            organization: None,
            org_role: None,
            tags_all: Vec::new(),
            tags_any: Vec::new(),
            tags_none: Vec::new(),
            created_from: None,
            created_to: None,
            last_login: LastLogin::Any,
            active_since: None,
            inactive_since: None,
            service: None,
            profile: Vec::new(),
            conditions: Vec::new(),
            mfa: None,
            licence: None,
            group: None,
            sort: SortKey::Created,
            dir: SortDir::Desc,
            page: 1,
            limit: DEFAULT_LIMIT,
        }
    }
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// One page of a query's results, with what a pager needs.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The rows of this page, in sort order.
    pub items: Vec<T>,
    /// The page number, 1-based.
    pub page: i64,
    /// The page size the query asked for.
    pub limit: i64,
    /// The number of matches, or [`COUNT_CAP`] when `total_is_exact` is false.
    pub total: i64,
    /// False only on PostgreSQL, when a filter matches more than
    /// [`COUNT_CAP`] users and no exact count of that set is cheap: `total` is
    /// then the cap ("100,000+"), and later pages still load.
    pub total_is_exact: bool,
}

/// Above this many matches PostgreSQL stops counting (see
/// [`Page::total_is_exact`]): an exact `COUNT` of a large set there costs a
/// scan of every match (35 ms for 1,000,000 index entries on an idle 2-core
/// machine), which no page of 50 can afford; counting up to the cap costs at
/// most 100,001 index entries.
pub const COUNT_CAP: i64 = 100_000;

/// The most organizations or tags whose ordered ranges a PostgreSQL page
/// merges ([`UserQuery::set_page_sql`]); a larger set takes the general query.
const MAX_MERGED_RANGES: usize = 32;

/// Whether walking a sort index to the page's end (`end` matches, about
/// `end * users / total` entries) costs less than reading all `total`
/// matches, each fetched at roughly ten times an index entry.
fn walking_is_cheaper(total: i64, end: i64, users: i64) -> bool {
    (total as f64) * (total as f64) * 10.0 >= (end as f64) * (users as f64)
}

/// `<head> (<inner>) <tail>`: a diesel query wrapped in SQL that selects one
/// `BIGINT` from it, a count or a page of ids ([`count_of`],
/// `UserQuery::matches_first_page`).
#[derive(diesel::query_builder::QueryId)]
struct Around<Q> {
    head: &'static str,
    inner: Q,
    tail: String,
    /// Whether the statement may be kept prepared: not when `tail` holds
    /// values that change from call to call.
    cache: bool,
}

/// `SELECT count(*) FROM (<inner>) AS capped`: with a `LIMIT` on the inner
/// query, the count stops there.
fn count_of<Q>(inner: Q) -> Around<Q> {
    Around {
        head: "SELECT count(*) FROM ",
        inner,
        tail: " AS capped".into(),
        cache: true,
    }
}

impl<Q> diesel::query_builder::Query for Around<Q> {
    type SqlType = BigInt;
}

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for Around<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        if !self.cache {
            out.unsafe_to_cache_prepared();
        }
        out.push_sql(self.head);
        out.push_sql("(");
        self.inner.walk_ast(out.reborrow())?;
        out.push_sql(")");
        out.push_sql(&self.tail);
        Ok(())
    }
}

impl<Q, Conn> RunQueryDsl<Conn> for Around<Q> {}

impl<T> Page<T> {
    /// How many pages the matches fill at this page size; at least 1, even
    /// when nothing matches.
    pub fn pages(&self) -> i64 {
        ((self.total + self.limit - 1) / self.limit).max(1)
    }
}

/// `users.id IN (set)`. With `walk`, the id is written `+users.id`, which
/// SQLite may not look up by: it then walks the sort order's index and checks
/// each entry against the set, instead of reading every member's row and
/// sorting them all. Other backends ignore the flag.
macro_rules! id_in {
    ($walk:expr, $set:expr $(,)?) => {{
        let cond: Box<dyn BoxableExpression<users::table, Backend, SqlType = Bool>> = if $walk {
            Box::new(sql::<BigInt>("+users.id").eq_any($set))
        } else {
            Box::new(users::id.eq_any($set))
        };
        cond
    }};
}

/// Where one set of user ids comes from: the rows of `table`
/// (`memberships` or `user_tags`, one row per user and organization or tag)
/// that meet every `column = value` of `all` and, when `any` is given, hold
/// one of its values (sorted, without repeats). The values are integers and
/// fixed role words, written into the SQL so that each backend plans with the
/// real values.
struct IdSource {
    table: &'static str,
    all: Vec<(&'static str, String)>,
    any: Option<(&'static str, Vec<i64>)>,
}

impl IdSource {
    fn all(table: &'static str, all: Vec<(&'static str, String)>) -> Self {
        IdSource {
            table,
            all,
            any: None,
        }
    }

    fn any_of(table: &'static str, column: &'static str, values: &[i64]) -> Self {
        IdSource {
            table,
            all: Vec::new(),
            any: Some((column, sorted_ids(values))),
        }
    }

    /// Whether each user is in at most one of the rows: the table's key is
    /// (user, organization) or (user, tag), so one fixed organization or tag
    /// makes it unique; a role alone or several values do not.
    fn one_row_per_user(&self) -> bool {
        let key = match self.table {
            "memberships" => "organization_id",
            _ => "tag_id",
        };
        match &self.any {
            Some((column, values)) => *column == key && values.len() <= 1,
            None => self.all.iter().any(|(column, _)| *column == key),
        }
    }

    /// The condition on the rows of `alias`.
    fn cond(&self, alias: &str) -> String {
        let mut parts: Vec<String> = self
            .all
            .iter()
            .map(|(column, value)| format!("{alias}.{column} = {value}"))
            .collect();
        if let Some((column, values)) = &self.any {
            parts.push(match values.as_slice() {
                [] => "0 = 1".to_owned(),
                [v] => format!("{alias}.{column} = {v}"),
                _ => format!("{alias}.{column} IN ({})", int_list(values)),
            });
        }
        parts.join(" AND ")
    }

    /// The set as ranges of one index each: one per value of `any` (the
    /// fixed conditions with `column = value`), or the one range of `all`.
    fn ranges(&self, alias: &str) -> Vec<String> {
        match &self.any {
            None => vec![self.cond(alias)],
            Some((column, values)) => values
                .iter()
                .map(|v| {
                    let mut one = IdSource::all(self.table, self.all.clone());
                    one.all.push((column, v.to_string()));
                    one.cond(alias)
                })
                .collect(),
        }
    }
}

/// `SELECT s0.user_id FROM … JOIN … ON sN.user_id = s0.user_id AND …`: the
/// users in every one of `sources`, as one join, so the planner intersects the
/// sets from their indexes (starting from the one it expects to be smallest)
/// before reading any user's row. A user may appear more than once (a role in
/// several organizations, several of the tags), which `IN (…)` ignores.
fn intersection_subquery(sources: &[IdSource]) -> Option<String> {
    let (first, rest) = sources.split_first()?;
    let mut q = format!("SELECT s0.user_id FROM {} s0", first.table);
    for (i, s) in rest.iter().enumerate() {
        let i = i + 1;
        q.push_str(&format!(
            " JOIN {} s{i} ON s{i}.user_id = s0.user_id AND {}",
            s.table,
            s.cond(&format!("s{i}"))
        ));
    }
    q.push_str(&format!(" WHERE {}", first.cond("s0")));
    Some(q)
}

/// `ids` sorted, without repeats.
/// The number of users: the kept count on PostgreSQL ([`counts`]), a
/// `count(*)` on SQLite.
fn all_users(conn: &mut DbConnection) -> QueryResult<i64> {
    match counts::count(conn, CountedSet::Users)? {
        Some(n) => Ok(n),
        None => users::table.count().get_result(conn),
    }
}

fn sorted_ids(ids: &[i64]) -> Vec<i64> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// `a, b, c` for the integers of an `IN (…)` list written into the SQL.
fn int_list(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl UserQuery {
    /// Checks page and limit; the web layers turn the error into a 400.
    pub fn validate(&self) -> CoreResult<()> {
        if self.page < 1 {
            return Err(CoreError::Invalid {
                field: "page",
                reason: "must be 1 or more".into(),
            });
        }
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(CoreError::Invalid {
                field: "limit",
                reason: format!("must be between 1 and {MAX_LIMIT}"),
            });
        }
        Ok(())
    }

    /// The filtered (unsorted, unpaged) query, limited to `scope` organizations
    /// when given. Built afresh for the count and for the page. `walk`: see
    /// [`Self::walk_sort_index`].
    fn filtered<'a>(
        &'a self,
        kind: BackendKind,
        scope: Option<&'a [i64]>,
        walk: bool,
    ) -> users::BoxedQuery<'a, Backend> {
        let mut q = users::table.into_boxed::<Backend>();
        let merged = match kind {
            BackendKind::Sqlite => intersection_subquery(&self.id_sources(scope)),
            BackendKind::Postgres => None,
        };
        if let Some(set) = &merged {
            q = q.filter(sql::<Bool>(&format!(
                "{} IN ({set})",
                if walk { "+users.id" } else { "users.id" }
            )));
        }
        let separate = merged.is_none();
        if let Some(orgs) = scope.filter(|_| separate) {
            q = q.filter(id_in!(
                walk,
                memberships::table
                    .select(memberships::user_id)
                    .filter(memberships::organization_id.eq_any(orgs)),
            ));
        }
        if let Some(term) = self.search_term() {
            q = q.filter(search_predicate(kind, term, walk));
        }
        // Pending is derived (see `UserStatus`): active without `activated_at`.
        q = match self.status {
            None => q,
            Some(UserStatus::Suspended) => {
                q.filter(users::status.eq(UserStatus::Suspended.as_str()))
            }
            Some(UserStatus::Active) => q
                .filter(users::status.eq(UserStatus::Active.as_str()))
                .filter(users::activated_at.is_not_null()),
            Some(UserStatus::Pending) => q
                .filter(users::status.eq(UserStatus::Active.as_str()))
                .filter(users::activated_at.is_null()),
        };
        q = match self.staff {
            StaffFilter::All => q,
            StaffFilter::Staff => q.filter(users::staff_role.is_not_null()),
            StaffFilter::NotStaff => q.filter(users::staff_role.is_null()),
            StaffFilter::Is(r) => q.filter(users::staff_role.eq(r.as_str())),
        };
        let members = memberships::table.select(memberships::user_id);
        q = match (self.organization, self.org_role) {
            _ if !separate => q,
            (None, None) => q,
            (Some(org), None) => q.filter(id_in!(
                walk,
                members.filter(memberships::organization_id.eq(org))
            )),
            (None, Some(role)) => q.filter(id_in!(
                walk,
                members.filter(memberships::role.eq(role.as_str()))
            )),
            (Some(org), Some(role)) => q.filter(id_in!(
                walk,
                members.filter(
                    memberships::organization_id
                        .eq(org)
                        .and(memberships::role.eq(role.as_str())),
                ),
            )),
        };
        if let Some(set) = intersection_subquery(&self.tags_all_sources()).filter(|_| separate) {
            // One self-join of `user_tags`, so the planner can start from the
            // rarest tag and look the others up by key, rather than
            // intersecting whole tag sets.
            q = q.filter(sql::<Bool>(&format!(
                "{} IN ({set})",
                if walk { "+users.id" } else { "users.id" }
            )));
        }
        if separate && !self.tags_any.is_empty() {
            q = q.filter(id_in!(
                walk,
                user_tags::table
                    .select(user_tags::user_id)
                    .filter(user_tags::tag_id.eq_any(&self.tags_any)),
            ));
        }
        if !self.tags_none.is_empty() {
            // NOT EXISTS, not NOT IN: PostgreSQL plans NOT IN over a large set as a
            // subplan per row, NOT EXISTS as an anti-join.
            q = q.filter(diesel::dsl::not(diesel::dsl::exists(
                user_tags::table
                    .select(user_tags::user_id)
                    .filter(user_tags::user_id.eq(users::id))
                    .filter(user_tags::tag_id.eq_any(&self.tags_none)),
            )));
        }
        if let Some(on) = self.mfa {
            let has = diesel::dsl::exists(
                mfa_factors::table
                    .select(mfa_factors::id)
                    .filter(mfa_factors::user_id.eq(users::id))
                    .filter(mfa_factors::confirmed_at.is_not_null()),
            );
            q = if on {
                q.filter(has)
            } else {
                q.filter(diesel::dsl::not(has))
            };
        }
        if let Some(from) = self.created_from {
            q = q.filter(users::created_at.ge(from));
        }
        if let Some(to) = self.created_to {
            q = q.filter(users::created_at.lt(to));
        }
        for f in &self.profile {
            q = q.filter(f.condition(kind));
        }
        for c in &self.conditions {
            q = q.filter(c.clone());
        }
        if let Some(key) = &self.licence {
            let orgs: Option<Vec<i64>> = match self.organization {
                Some(o) => Some(vec![o]),
                None => scope.map(<[i64]>::to_vec),
            };
            q = q.filter(crate::licences::holder_condition(key, orgs.as_deref()));
        }
        if let Some(group) = self.group {
            let orgs: Option<Vec<i64>> = match (self.organization, scope) {
                (Some(o), Some(s)) if !s.contains(&o) => Some(Vec::new()),
                (Some(o), _) => Some(vec![o]),
                (None, s) => s.map(<[i64]>::to_vec),
            };
            q = q.filter(crate::groups::member_condition(group, orgs.as_deref()));
        }
        if let Some(service) = self.service {
            q = q.filter(
                users::id.eq_any(
                    crate::schema::user_services::table
                        .filter(crate::schema::user_services::service_id.eq(service))
                        .select(crate::schema::user_services::user_id),
                ),
            );
        }
        // Written on the descending last-activity sort key (never active →
        // year 1, before any `since`), so that both filters are one range of
        // its index instead of a scan of every user: `>= since` is "active
        // since", `< since` is "inactive since, or never active".
        if let Some(since) = self.active_since {
            q = q.filter(sql::<Timestamp>(LAST_ACTIVE_NULLS_LAST_DESC).ge(since));
        }
        if let Some(since) = self.inactive_since {
            q = q.filter(sql::<Timestamp>(LAST_ACTIVE_NULLS_LAST_DESC).lt(since));
        }
        match self.last_login {
            LastLogin::Any => {}
            LastLogin::Never => q = q.filter(users::last_login_at.is_null()),
            LastLogin::Between(from, to) => {
                q = q.filter(users::last_login_at.is_not_null());
                if let Some(from) = from {
                    q = q.filter(users::last_login_at.ge(from));
                }
                if let Some(to) = to {
                    q = q.filter(users::last_login_at.lt(to));
                }
            }
        }
        q
    }

    /// The sets of user ids the query keeps to (organization scope, organization
    /// and/or role, tags all of, tags any of); ids and roles are written into
    /// the SQL (integers and fixed words), so the planner sees the real values.
    fn id_sources(&self, scope: Option<&[i64]>) -> Vec<IdSource> {
        let mut v = Vec::new();
        if let Some(orgs) = scope {
            v.push(IdSource::any_of("memberships", "organization_id", orgs));
        }
        v.extend(self.membership_source());
        v.extend(self.tags_all_sources());
        if !self.tags_any.is_empty() {
            v.push(IdSource::any_of("user_tags", "tag_id", &self.tags_any));
        }
        v
    }

    /// The members the organization and/or role filter keeps.
    fn membership_source(&self) -> Option<IdSource> {
        let mut all = Vec::new();
        if let Some(org) = self.organization {
            all.push(("organization_id", org.to_string()));
        }
        if let Some(role) = self.org_role {
            all.push(("role", format!("'{}'", role.as_str())));
        }
        (!all.is_empty()).then(|| IdSource::all("memberships", all))
    }

    /// One set per tag of "tags all of".
    fn tags_all_sources(&self) -> Vec<IdSource> {
        sorted_ids(&self.tags_all)
            .into_iter()
            .map(|tag| IdSource::all("user_tags", vec![("tag_id", tag.to_string())]))
            .collect()
    }

    fn sorted<'a>(&self, q: users::BoxedQuery<'a, Backend>) -> users::BoxedQuery<'a, Backend> {
        let asc = self.dir == SortDir::Asc;
        match (self.sort, asc) {
            (SortKey::Email, true) => q.order(users::email.asc()),
            (SortKey::Email, false) => q.order(users::email.desc()),
            (SortKey::Name, true) => q.order((
                users::last_name.asc(),
                users::first_name.asc(),
                users::id.asc(),
            )),
            (SortKey::Name, false) => q.order((
                users::last_name.desc(),
                users::first_name.desc(),
                users::id.desc(),
            )),
            (SortKey::Created, true) => q.order((users::created_at.asc(), users::id.asc())),
            (SortKey::Created, false) => q.order((users::created_at.desc(), users::id.desc())),
            // Users who never signed in sort last either way, on both backends:
            // they take a sign-in time beyond every real one in the sort's
            // direction, then go by id. The expressions are those of the two
            // last sign-in indexes in the migrations, so the sort walks an index.
            (SortKey::LastLogin, true) => q.order((
                sql::<Timestamp>(LAST_LOGIN_NULLS_LAST_ASC).asc(),
                users::id.asc(),
            )),
            (SortKey::LastLogin, false) => q.order((
                sql::<Timestamp>(LAST_LOGIN_NULLS_LAST_DESC).desc(),
                users::id.desc(),
            )),
            (SortKey::LastActive, true) => q.order((
                sql::<Timestamp>(LAST_ACTIVE_NULLS_LAST_ASC).asc(),
                users::id.asc(),
            )),
            (SortKey::LastActive, false) => q.order((
                sql::<Timestamp>(LAST_ACTIVE_NULLS_LAST_DESC).desc(),
                users::id.desc(),
            )),
        }
    }

    /// Runs the query for `actor`: staff see every user, organization admins
    /// only the users of their organizations.
    pub fn run(&self, conn: &mut DbConnection, actor: &Actor) -> CoreResult<Page<User>> {
        let scope = actor.visible_orgs();
        if scope.as_ref().is_some_and(|s| s.is_empty()) {
            return Err(CoreError::Forbidden);
        }
        self.run_scoped(conn, scope.as_deref())
    }

    /// Whether any filter reads a column of `users` itself (rather than a set
    /// of user ids from `memberships` or `user_tags`).
    fn filters_user_columns(&self) -> bool {
        self.search_term().is_some() || self.filters_user_columns_besides_search()
    }

    /// The search term, when there is one.
    fn search_term(&self) -> Option<&str> {
        self.search
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// Whether a filter other than the search reads a column of `users`.
    fn filters_user_columns_besides_search(&self) -> bool {
        self.status.is_some()
            || self.staff != StaffFilter::All
            || self.created_from.is_some()
            || self.created_to.is_some()
            || self.last_login != LastLogin::Any
            || self.active_since.is_some()
            || self.inactive_since.is_some()
            || self.service.is_some()
            || !self.profile.is_empty()
            || !self.conditions.is_empty()
            || self.licence.is_some()
            || self.group.is_some()
            // Not a column, but no count shortcut knows it either.
            || self.mfa.is_some()
    }

    /// The exact count when the only filter is one set of user ids (an
    /// organization and/or role, tags any of, one tag, or tags none of): taken
    /// from `memberships` / `user_tags` alone, whose foreign keys keep them to
    /// existing users, instead of visiting every matching user. On PostgreSQL
    /// one tag's users and every user (no filter at all, or the complement of
    /// tags none of) are the kept counts of [`counts`]. `None` when the query
    /// has other filters (or none, on SQLite).
    fn count_from_sets(
        &self,
        conn: &mut DbConnection,
        scope: Option<&[i64]>,
    ) -> QueryResult<Option<i64>> {
        if let Some(n) = self.count_from_search_index(conn, scope)? {
            return Ok(Some(n));
        }
        if let Some(n) = self.count_active_by_complement(conn, scope)? {
            return Ok(Some(n));
        }
        if scope.is_some() || self.filters_user_columns() {
            return Ok(None);
        }
        let sets = [
            self.membership_source().is_some(),
            !self.tags_all.is_empty(),
            !self.tags_any.is_empty(),
            !self.tags_none.is_empty(),
        ];
        match sets.iter().filter(|s| **s).count() {
            // No filter at all: every user, counted on PostgreSQL only.
            0 => return counts::count(conn, CountedSet::Users),
            1 => {}
            _ => return Ok(None),
        }
        let (sources, complement) = if self.tags_none.is_empty() {
            (self.id_sources(None), false)
        } else {
            let tagged = IdSource::any_of("user_tags", "tag_id", &self.tags_none);
            (vec![tagged], true)
        };
        let one_tag = match (
            self.tags_all.as_slice(),
            self.tags_any.as_slice(),
            self.tags_none.as_slice(),
        ) {
            ([t], [], []) | ([], [t], []) | ([], [], [t]) => Some(*t),
            _ => None,
        };
        let kept = match one_tag {
            Some(t) => counts::count(conn, CountedSet::Tag(t))?,
            None => None,
        };
        let n = match kept {
            Some(n) => n,
            None => {
                let Some(set) = intersection_subquery(&sources) else {
                    return Ok(None);
                };
                // Each join of rows unique per user gives each user once.
                let counted = if sources.iter().all(IdSource::one_row_per_user) {
                    "count(*)"
                } else {
                    "count(DISTINCT s.user_id)"
                };
                diesel::sql_query(format!("SELECT {counted} AS n FROM ({set}) s"))
                    .get_result::<Count>(conn)?
                    .n
            }
        };
        if !complement {
            return Ok(Some(n));
        }
        Ok(Some(all_users(conn)? - n))
    }

    /// On SQLite, the exact count of a search that is the only filter, taken
    /// from the FTS5 index alone: its rows are kept in step with `users` by
    /// triggers (one per user, removed with the user), so the matches it lists
    /// are exactly the users the search predicate keeps, without reading each
    /// user's row. `None` otherwise.
    fn count_from_search_index(
        &self,
        conn: &mut DbConnection,
        scope: Option<&[i64]>,
    ) -> QueryResult<Option<i64>> {
        let Some(phrase) = self.search_term().and_then(|t| fts_phrase(conn.kind(), t)) else {
            return Ok(None);
        };
        if scope.is_some()
            || self.filters_user_columns_besides_search()
            || self.organization.is_some()
            || self.org_role.is_some()
            || !self.tags_all.is_empty()
            || !self.tags_any.is_empty()
            || !self.tags_none.is_empty()
        {
            return Ok(None);
        }
        let n =
            diesel::sql_query("SELECT count(*) AS n FROM users_search WHERE users_search MATCH ?")
                .bind::<Text, _>(phrase)
                .get_result::<Count>(conn)?
                .n;
        Ok(Some(n))
    }

    /// The exact count of "status = active" as the only filter: all users less
    /// the suspended and the pending ones (the partial index), in one
    /// statement (status is one of the two, `NOT NULL` and checked). On SQLite
    /// counting every user takes the narrowest index and the suspended few
    /// their slice of the status index, together about 2.5 times cheaper than
    /// the active ~90 % of that index; the pending slice is named by its
    /// partial index, as SQLite's planner prefers the status index there
    /// (measured: 285 ms against 8 ms at 1M users). On PostgreSQL every user is
    /// the kept count ([`counts`]), so only the two small slices are read.
    /// `None` otherwise.
    fn count_active_by_complement(
        &self,
        conn: &mut DbConnection,
        scope: Option<&[i64]>,
    ) -> QueryResult<Option<i64>> {
        let only_status = scope.is_none()
            && self.search_term().is_none()
            && self.mfa.is_none()
            && self.staff == StaffFilter::All
            && self.organization.is_none()
            && self.org_role.is_none()
            && self.tags_all.is_empty()
            && self.tags_any.is_empty()
            && self.tags_none.is_empty()
            && self.created_from.is_none()
            && self.created_to.is_none()
            && self.last_login == LastLogin::Any
            && self.active_since.is_none()
            && self.inactive_since.is_none()
            && self.service.is_none()
            && self.profile.is_empty()
            && self.conditions.is_empty()
            && self.licence.is_none()
            && self.group.is_none();
        if self.status != Some(UserStatus::Active) || !only_status {
            return Ok(None);
        }
        let (every_user, pending) = match counts::count(conn, CountedSet::Users)? {
            Some(n) => (n.to_string(), "users"),
            None => (
                "(SELECT count(*) FROM users)".to_string(),
                "users INDEXED BY users_pending_created_at",
            ),
        };
        let n = diesel::sql_query(format!(
            "SELECT {every_user} - \
             (SELECT count(*) FROM users WHERE status = '{}') - \
             (SELECT count(*) FROM {pending} \
              WHERE status = '{}' AND activated_at IS NULL) AS n",
            UserStatus::Suspended.as_str(),
            UserStatus::Active.as_str()
        ))
        .get_result::<Count>(conn)?
        .n;
        Ok(Some(n))
    }

    /// Whether the page is better found by walking the sort order's index and
    /// testing each user against the id sets (dense sets, deep pages) than by
    /// reading every member and sorting (small sets). Scanning costs about
    /// `end * users / total` index entries, fetching `total` rows at roughly
    /// ten times an entry each; `users` is estimated from the largest id.
    /// Only when every filter is such a set (the search's FTS5 matches count as
    /// one): with a filter on a column of `users`, `+users.id` leaves the
    /// planner free to pick that column's index instead, reading every match.
    fn walk_sort_index(&self, conn: &mut DbConnection, total: i64, end: i64) -> QueryResult<bool> {
        let kind = conn.kind();
        let fts_search = self
            .search_term()
            .is_some_and(|t| fts_phrase(kind, t).is_some());
        let sets = self.organization.is_some()
            || self.org_role.is_some()
            || !self.tags_all.is_empty()
            || !self.tags_any.is_empty()
            || fts_search;
        let other_columns = self.filters_user_columns_besides_search()
            || (self.search_term().is_some() && !fts_search);
        if kind != BackendKind::Sqlite || !sets || other_columns || total == 0 {
            return Ok(false);
        }
        let max_id: Option<i64> = users::table
            .select(diesel::dsl::max(users::id))
            .get_result(conn)?;
        Ok(walking_is_cheaper(total, end, max_id.unwrap_or(0)))
    }

    /// On PostgreSQL, whether the page is better found by reading every match
    /// first and sorting them than by walking the sort order's index (which
    /// the planner prefers for any `LIMIT`): when the exact count is small
    /// against the stretch of the index the walk would pass, as for page 100
    /// of a search shared by 5,529 of 1,000,000 users (395 ms walking, 21 ms
    /// reading the matches, `EXPLAIN ANALYZE` in docs/bench-users-query.md).
    /// Same rule as SQLite's [`Self::walk_sort_index`], with every user the
    /// kept count ([`counts`]).
    fn read_matches_first(
        &self,
        conn: &mut DbConnection,
        total: i64,
        total_is_exact: bool,
        end: i64,
    ) -> QueryResult<bool> {
        if conn.kind() != BackendKind::Postgres || !total_is_exact || total == 0 {
            return Ok(false);
        }
        let Some(users) = counts::count(conn, CountedSet::Users)? else {
            return Ok(false);
        };
        Ok(!walking_is_cheaper(total, end, users))
    }

    /// The sort as SQL over the columns of `users`: the key expressions and
    /// the direction, as [`Self::sorted`] orders (the integration test
    /// `users_query::a_deep_page_read_matches_first_equals_the_index_walk`
    /// compares the two for every sort, both ways).
    fn sort_keys(&self) -> (&'static [&'static str], &'static str) {
        let asc = self.dir == SortDir::Asc;
        let keys: &'static [&'static str] = match (self.sort, asc) {
            (SortKey::Email, _) => &["users.email"],
            (SortKey::Name, _) => &["users.last_name", "users.first_name", "users.id"],
            (SortKey::Created, _) => &["users.created_at", "users.id"],
            (SortKey::LastLogin, true) => &[LAST_LOGIN_NULLS_LAST_ASC, "users.id"],
            (SortKey::LastLogin, false) => &[LAST_LOGIN_NULLS_LAST_DESC, "users.id"],
            (SortKey::LastActive, true) => &[LAST_ACTIVE_NULLS_LAST_ASC, "users.id"],
            (SortKey::LastActive, false) => &[LAST_ACTIVE_NULLS_LAST_DESC, "users.id"],
        };
        (keys, if asc { "ASC" } else { "DESC" })
    }

    /// The page's ids from every match read first ([`Self::read_matches_first`]):
    /// the filtered query with its sort keys, fenced by `OFFSET 0` so that the
    /// planner finds the matches by their own best path (a trigram index, a
    /// set) instead of walking the sort's index, then sorted.
    fn matches_first_page(
        &self,
        conn: &mut DbConnection,
        scope: Option<&[i64]>,
        limit: i64,
        offset: i64,
    ) -> QueryResult<Vec<i64>> {
        let (keys, dir) = self.sort_keys();
        let selected = keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} AS k{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let order = (0..keys.len())
            .map(|i| format!("m.k{i} {dir}"))
            .collect::<Vec<_>>()
            .join(", ");
        let inner = self
            .filtered(conn.kind(), scope, false)
            .select((users::id, sql::<Text>(&selected)))
            .offset(0);
        Around {
            head: "SELECT m.id FROM ",
            inner,
            tail: format!(" AS m ORDER BY {order} LIMIT {limit} OFFSET {offset}"),
            cache: false,
        }
        .load(conn)
    }

    /// On PostgreSQL, the page's ids when the only filter is one set of user
    /// ids from `memberships` or `user_tags` (an organization and/or role, the
    /// organization scope, one tag or tags any of) and the sort is the sign-up
    /// time: read from that set's own index on `(…, user_created_at,
    /// user_id)`, the copy of each user's `created_at` the triggers keep, in
    /// the order of `users (created_at, id)` and without reading `users`. A
    /// set of several organizations or tags is one ordered index range each,
    /// each cut at the page's end (no entry past it in one range can be on the
    /// page), then merged: the planner would otherwise sort the whole set, as
    /// it misjudges how many users are in more than one range. A user in the
    /// set more than once (a role in several organizations, several of the
    /// tags) is one group. `None` otherwise: the general query walks the sort index
    /// of `users` and probes the set for each entry it passes, which for a
    /// deep page of a sparse set is thousands of probes.
    fn set_page_sql(
        &self,
        kind: BackendKind,
        scope: Option<&[i64]>,
        limit: i64,
        offset: i64,
    ) -> Option<String> {
        if kind != BackendKind::Postgres
            || self.sort != SortKey::Created
            || self.filters_user_columns()
            || !self.tags_none.is_empty()
        {
            return None;
        }
        let sources = self.id_sources(scope);
        let [source] = sources.as_slice() else {
            return None;
        };
        let (table, branches) = (source.table, source.ranges("s"));
        if branches.is_empty() || branches.len() > MAX_MERGED_RANGES {
            return None;
        }
        let dir = if self.dir == SortDir::Asc {
            "ASC"
        } else {
            "DESC"
        };
        let from = match branches.as_slice() {
            [cond] => format!("SELECT s.user_created_at, s.user_id FROM {table} s WHERE {cond}"),
            _ => branches
                .iter()
                .map(|cond| {
                    format!(
                        "(SELECT s.user_created_at, s.user_id FROM {table} s WHERE {cond} \
                         ORDER BY s.user_created_at {dir}, s.user_id {dir} LIMIT {})",
                        offset + limit
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL "),
        };
        Some(format!(
            "SELECT s.user_id AS id FROM ({from}) s \
             GROUP BY s.user_created_at, s.user_id \
             ORDER BY s.user_created_at {dir}, s.user_id {dir} LIMIT {limit} OFFSET {offset}"
        ))
    }

    /// The rows of one page in sort order. The page's ids are picked first, so
    /// sorting and skipping (OFFSET) move index entries rather than whole rows;
    /// only the page's own rows are then read in full.
    fn load_page(
        &self,
        conn: &mut DbConnection,
        scope: Option<&[i64]>,
        limit: i64,
        offset: i64,
        walk: bool,
        matches_first: bool,
    ) -> QueryResult<Vec<User>> {
        let kind = conn.kind();
        let ids: Vec<i64> = match self.set_page_sql(kind, scope, limit, offset) {
            Some(q) => diesel::sql_query(q)
                .load::<Id>(conn)?
                .into_iter()
                .map(|r| r.id)
                .collect(),
            None if matches_first => self.matches_first_page(conn, scope, limit, offset)?,
            None => self
                .sorted(self.filtered(kind, scope, walk))
                .select(users::id)
                .limit(limit)
                .offset(offset)
                .load(conn)?,
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows: Vec<User> = users::table
            .filter(users::id.eq_any(&ids))
            .select(User::as_select())
            .load(conn)?;
        let position: HashMap<i64, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        rows.sort_by_key(|u| position.get(&u.id).copied().unwrap_or(usize::MAX));
        Ok(rows)
    }

    /// Runs the query limited to `scope` organizations (`None`: all users).
    pub fn run_scoped(
        &self,
        conn: &mut DbConnection,
        scope: Option<&[i64]>,
    ) -> CoreResult<Page<User>> {
        self.validate()?;
        let kind = conn.kind();
        let (total, total_is_exact) = match self.count_from_sets(conn, scope)? {
            Some(n) => (n, true),
            None if kind == BackendKind::Postgres => {
                let n: i64 = count_of(
                    self.filtered(kind, scope, false)
                        .select(users::id)
                        .limit(COUNT_CAP + 1),
                )
                .get_result(conn)?;
                (n.min(COUNT_CAP), n <= COUNT_CAP)
            }
            None => (
                self.filtered(kind, scope, false).count().get_result(conn)?,
                true,
            ),
        };
        let offset = (self.page - 1) * self.limit;
        let end = offset + self.limit;
        let items = if total_is_exact && offset >= total {
            Vec::new()
        } else {
            let walk = self.walk_sort_index(conn, total, end)?;
            let first = self.read_matches_first(conn, total, total_is_exact, end)?;
            self.load_page(conn, scope, self.limit, offset, walk, first)?
        };
        Ok(Page {
            items,
            page: self.page,
            limit: self.limit,
            total,
            total_is_exact,
        })
    }

    /// Visits every matching user in sort order, a batch at a time, without
    /// holding the whole result. Batches continue after the previous batch's
    /// last row (keyset pagination, with row-value comparisons on the sort's
    /// own keys), so each costs the same however deep into the result it is.
    /// The callback gets the connection back to read what goes with each batch.
    pub fn for_each_batch<E: From<CoreError>>(
        &self,
        conn: &mut DbConnection,
        scope: Option<&[i64]>,
        batch: i64,
        f: impl FnMut(&mut DbConnection, &[User]) -> Result<(), E>,
    ) -> Result<(), E> {
        keyset_batches!(self, conn, scope, batch, f, User)
    }

    /// [`Self::for_each_batch`] reading only the columns an export writes
    /// (no password hash or search text): the export
    /// streams through this.
    pub(crate) fn for_each_export_batch<E: From<CoreError>>(
        &self,
        conn: &mut DbConnection,
        scope: Option<&[i64]>,
        batch: i64,
        f: impl FnMut(&mut DbConnection, &[ExportRow]) -> Result<(), E>,
    ) -> Result<(), E> {
        keyset_batches!(self, conn, scope, batch, f, ExportRow)
    }

    /// Rows that come after `u` in this query's order (see [`Self::sorted`]).
    fn after<'a>(
        &self,
        q: users::BoxedQuery<'a, Backend>,
        u: &Keyset,
    ) -> users::BoxedQuery<'a, Backend> {
        let asc = self.dir == SortDir::Asc;
        let op = if asc { ") > (" } else { ") < (" };
        match self.sort {
            SortKey::Email if asc => q.filter(users::email.gt(u.email.clone())),
            SortKey::Email => q.filter(users::email.lt(u.email.clone())),
            SortKey::Name => q.filter(
                sql::<Bool>("(users.last_name, users.first_name, users.id")
                    .sql(op)
                    .bind::<Text, _>(u.last_name.clone())
                    .sql(", ")
                    .bind::<Text, _>(u.first_name.clone())
                    .sql(", ")
                    .bind::<BigInt, _>(u.id)
                    .sql(")"),
            ),
            SortKey::Created => q.filter(
                sql::<Bool>("(users.created_at, users.id")
                    .sql(op)
                    .bind::<Timestamp, _>(u.created_at)
                    .sql(", ")
                    .bind::<BigInt, _>(u.id)
                    .sql(")"),
            ),
            // The same COALESCE expressions the sort uses, on both sides.
            SortKey::LastLogin | SortKey::LastActive => {
                let last = self.sort == SortKey::LastLogin;
                let (expr, fill) = match (last, asc) {
                    (true, true) => (LAST_LOGIN_NULLS_LAST_ASC, "'9999-12-31 23:59:59'"),
                    (true, false) => (LAST_LOGIN_NULLS_LAST_DESC, "'0001-01-01 00:00:00'"),
                    (false, true) => (LAST_ACTIVE_NULLS_LAST_ASC, "'9999-12-31 23:59:59'"),
                    (false, false) => (LAST_ACTIVE_NULLS_LAST_DESC, "'0001-01-01 00:00:00'"),
                };
                let at = if last {
                    u.last_login_at
                } else {
                    u.last_active_at
                };
                q.filter(
                    sql::<Bool>(&format!("({expr}, users.id{op}COALESCE("))
                        .bind::<Nullable<Timestamp>, _>(at)
                        .sql(&format!(", {fill}), "))
                        .bind::<BigInt, _>(u.id)
                        .sql(")"),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> UserQuery {
        UserQuery::default()
    }

    #[test]
    fn each_set_is_built_once_from_the_filters() {
        let q = UserQuery {
            organization: Some(7),
            org_role: Some(OrgRole::Admin),
            tags_all: vec![5, 3, 5],
            tags_any: vec![9, 2, 9],
            ..query()
        };
        let sources = q.id_sources(Some(&[4, 1, 4]));
        let conds: Vec<String> = sources.iter().map(|s| s.cond("s")).collect();
        assert_eq!(
            conds,
            [
                "s.organization_id IN (1, 4)",
                "s.organization_id = 7 AND s.role = 'admin'",
                "s.tag_id = 3",
                "s.tag_id = 5",
                "s.tag_id IN (2, 9)",
            ]
        );
        let unique: Vec<bool> = sources.iter().map(IdSource::one_row_per_user).collect();
        assert_eq!(unique, [false, true, true, true, false]);
        assert_eq!(
            sources[0].ranges("m"),
            ["m.organization_id = 1", "m.organization_id = 4"]
        );
        assert_eq!(
            sources[1].ranges("m"),
            ["m.organization_id = 7 AND m.role = 'admin'"]
        );
        assert_eq!(
            intersection_subquery(&sources[2..4]).as_deref(),
            Some(
                "SELECT s0.user_id FROM user_tags s0 JOIN user_tags s1 \
                 ON s1.user_id = s0.user_id AND s1.tag_id = 5 WHERE s0.tag_id = 3"
            )
        );
        let role_only = UserQuery {
            org_role: Some(OrgRole::Member),
            ..query()
        };
        let source = role_only.membership_source().expect("a role is a set");
        assert!(!source.one_row_per_user());
        assert!(query().membership_source().is_none());
        assert_eq!(
            IdSource::any_of("user_tags", "tag_id", &[]).cond("s"),
            "0 = 1"
        );
    }

    #[test]
    fn only_one_set_sorted_by_sign_up_on_postgres_reads_the_copies() {
        let pg = BackendKind::Postgres;
        let org = UserQuery {
            organization: Some(7),
            ..query()
        };
        let sql = org
            .set_page_sql(pg, None, 50, 100)
            .expect("one organization");
        assert!(
            sql.contains("FROM memberships s WHERE s.organization_id = 7"),
            "{sql}"
        );
        assert!(sql.ends_with("LIMIT 50 OFFSET 100"), "{sql}");
        assert!(org.set_page_sql(BackendKind::Sqlite, None, 50, 0).is_none());
        let name_sort = UserQuery {
            sort: SortKey::Name,
            ..org.clone()
        };
        assert!(name_sort.set_page_sql(pg, None, 50, 0).is_none());
        // Two sets (scope and organization), two tags all of, tags none of.
        assert!(org.set_page_sql(pg, Some(&[7]), 50, 0).is_none());
        let two_tags = UserQuery {
            tags_all: vec![1, 2],
            ..query()
        };
        assert!(two_tags.set_page_sql(pg, None, 50, 0).is_none());
        let same_tag_twice = UserQuery {
            tags_all: vec![2, 2],
            ..query()
        };
        assert!(same_tag_twice.set_page_sql(pg, None, 50, 0).is_some());
        let none_of = UserQuery {
            tags_none: vec![1],
            ..query()
        };
        assert!(none_of.set_page_sql(pg, None, 50, 0).is_none());
        // Several tags: one range each, cut at the page's end, merged.
        let any = UserQuery {
            tags_any: vec![3, 1],
            ..query()
        };
        let sql = any.set_page_sql(pg, None, 10, 20).expect("tags any of");
        assert_eq!(sql.matches("LIMIT 30)").count(), 2, "{sql}");
        assert!(sql.contains("s.tag_id = 1 ORDER BY"), "{sql}");
        let many = UserQuery {
            tags_any: (1..=(MAX_MERGED_RANGES as i64 + 1)).collect(),
            ..query()
        };
        assert!(many.set_page_sql(pg, None, 50, 0).is_none());
        assert!(query().set_page_sql(pg, Some(&[]), 50, 0).is_none());
    }
}
