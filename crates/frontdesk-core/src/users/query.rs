//! The users query: search, filters, sort and pagination in one builder, used by
//! the admin pages, the JSON API and the export alike.

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use serde::{Deserialize, Serialize};

use super::{User, UserStatus};
use crate::authz::{Actor, OrgRole, StaffRole};
use crate::db::{search_predicate, Backend, BackendKind, DbConnection};
use crate::error::{CoreError, CoreResult};
use crate::schema::{memberships, user_tags, users};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffFilter {
    #[default]
    All,
    /// Users with any staff role.
    Staff,
    /// Users without a staff role.
    NotStaff,
    Is(StaffRole),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    Email,
    Name,
    #[default]
    Created,
    LastLogin,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortDir {
    Asc,
    #[default]
    Desc,
}

/// Last sign-in filter: a range, or users who never signed in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LastLogin {
    #[default]
    Any,
    Never,
    Between(Option<NaiveDateTime>, Option<NaiveDateTime>),
}

#[derive(Debug, Clone)]
pub struct UserQuery {
    pub search: Option<String>,
    pub status: Option<UserStatus>,
    pub staff: StaffFilter,
    pub organization: Option<i64>,
    pub org_role: Option<OrgRole>,
    pub tags_all: Vec<i64>,
    pub tags_any: Vec<i64>,
    pub tags_none: Vec<i64>,
    pub created_from: Option<NaiveDateTime>,
    pub created_to: Option<NaiveDateTime>,
    pub last_login: LastLogin,
    pub sort: SortKey,
    pub dir: SortDir,
    /// 1-based.
    pub page: i64,
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
            sort: SortKey::Created,
            dir: SortDir::Desc,
            page: 1,
            limit: DEFAULT_LIMIT,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: i64,
    pub limit: i64,
    pub total: i64,
}

impl<T> Page<T> {
    pub fn pages(&self) -> i64 {
        ((self.total + self.limit - 1) / self.limit).max(1)
    }
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
    /// when given. Built afresh for the count and for the page.
    fn filtered<'a>(
        &'a self,
        kind: BackendKind,
        scope: Option<&'a [i64]>,
    ) -> users::BoxedQuery<'a, Backend> {
        let mut q = users::table.into_boxed::<Backend>();
        if let Some(orgs) = scope {
            q = q.filter(
                users::id.eq_any(
                    memberships::table
                        .select(memberships::user_id)
                        .filter(memberships::organization_id.eq_any(orgs)),
                ),
            );
        }
        if let Some(term) = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            q = q.filter(search_predicate(kind, term));
        }
        if let Some(status) = self.status {
            q = q.filter(users::status.eq(status.as_str()));
        }
        q = match self.staff {
            StaffFilter::All => q,
            StaffFilter::Staff => q.filter(users::staff_role.is_not_null()),
            StaffFilter::NotStaff => q.filter(users::staff_role.is_null()),
            StaffFilter::Is(r) => q.filter(users::staff_role.eq(r.as_str())),
        };
        let members = memberships::table.select(memberships::user_id);
        q = match (self.organization, self.org_role) {
            (None, None) => q,
            (Some(org), None) => {
                q.filter(users::id.eq_any(members.filter(memberships::organization_id.eq(org))))
            }
            (None, Some(role)) => {
                q.filter(users::id.eq_any(members.filter(memberships::role.eq(role.as_str()))))
            }
            (Some(org), Some(role)) => q.filter(
                users::id.eq_any(
                    members.filter(
                        memberships::organization_id
                            .eq(org)
                            .and(memberships::role.eq(role.as_str())),
                    ),
                ),
            ),
        };
        for tag in &self.tags_all {
            q = q.filter(
                users::id.eq_any(
                    user_tags::table
                        .select(user_tags::user_id)
                        .filter(user_tags::tag_id.eq(*tag)),
                ),
            );
        }
        if !self.tags_any.is_empty() {
            q = q.filter(
                users::id.eq_any(
                    user_tags::table
                        .select(user_tags::user_id)
                        .filter(user_tags::tag_id.eq_any(&self.tags_any)),
                ),
            );
        }
        if !self.tags_none.is_empty() {
            q = q.filter(diesel::dsl::not(
                users::id.eq_any(
                    user_tags::table
                        .select(user_tags::user_id)
                        .filter(user_tags::tag_id.eq_any(&self.tags_none)),
                ),
            ));
        }
        if let Some(from) = self.created_from {
            q = q.filter(users::created_at.ge(from));
        }
        if let Some(to) = self.created_to {
            q = q.filter(users::created_at.lt(to));
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
            // Users who never signed in sort last either way, on both backends.
            (SortKey::LastLogin, true) => q.order((
                sql::<Bool>("users.last_login_at IS NULL").asc(),
                users::last_login_at.asc(),
                users::id.asc(),
            )),
            (SortKey::LastLogin, false) => q.order((
                sql::<Bool>("users.last_login_at IS NULL").asc(),
                users::last_login_at.desc(),
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

    /// Runs the query limited to `scope` organizations (`None`: all users).
    pub fn run_scoped(
        &self,
        conn: &mut DbConnection,
        scope: Option<&[i64]>,
    ) -> CoreResult<Page<User>> {
        self.validate()?;
        let kind = conn.kind();
        let total: i64 = self.filtered(kind, scope).count().get_result(conn)?;
        let items = self
            .sorted(self.filtered(kind, scope))
            .select(User::as_select())
            .limit(self.limit)
            .offset((self.page - 1) * self.limit)
            .load(conn)?;
        Ok(Page {
            items,
            page: self.page,
            limit: self.limit,
            total,
        })
    }

    /// Visits every matching user in sort order, a batch at a time, without
    /// holding the whole result (the export streams through this).
    pub fn for_each_batch(
        &self,
        conn: &mut DbConnection,
        scope: Option<&[i64]>,
        batch: i64,
        mut f: impl FnMut(&[User]) -> CoreResult<()>,
    ) -> CoreResult<()> {
        let kind = conn.kind();
        let mut offset = 0;
        loop {
            let rows: Vec<User> = self
                .sorted(self.filtered(kind, scope))
                .select(User::as_select())
                .limit(batch)
                .offset(offset)
                .load(conn)?;
            if rows.is_empty() {
                return Ok(());
            }
            f(&rows)?;
            if (rows.len() as i64) < batch {
                return Ok(());
            }
            offset += batch;
        }
    }
}
