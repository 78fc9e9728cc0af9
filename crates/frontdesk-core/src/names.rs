//! Names for the records a page of the audit log or of sessions refers to
//! (`user:7`, `organization:2`, `api_key:3`, …): one query per kind for the
//! whole page, never one per row.

use std::collections::{BTreeSet, HashMap};

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::error::CoreResult;
use crate::schema::{api_keys, invitations, organizations, tags, users};

/// A user as lists name them: display name, else first and last name, else
/// the email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName {
    /// The name to show.
    pub name: String,
    /// The email address.
    pub email: String,
}

/// The names found for a set of references; a reference to a deleted record
/// is simply missing.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Users by id.
    pub users: HashMap<i64, UserName>,
    /// Organization names by id.
    pub organizations: HashMap<i64, String>,
    /// API key names by id.
    pub api_keys: HashMap<i64, String>,
    /// Invitations by id, named by the invited email.
    pub invitations: HashMap<i64, String>,
    /// Tag names by id.
    pub tags: HashMap<i64, String>,
}

/// The kind and id of a reference such as `user:7`.
pub fn parse_ref(r: &str) -> Option<(&str, i64)> {
    let (kind, id) = r.split_once(':')?;
    Some((kind, id.parse().ok()?))
}

/// The name lists show for a user.
pub fn user_name(display: Option<&str>, first: &str, last: &str, email: &str) -> String {
    if let Some(d) = display.filter(|d| !d.trim().is_empty()) {
        return d.to_owned();
    }
    let full = format!("{first} {last}").trim().to_owned();
    if full.is_empty() {
        email.to_owned()
    } else {
        full
    }
}

impl Names {
    /// Loads the names of every `kind:id` reference in `refs` (other strings,
    /// such as `system` or `ip:…`, are ignored).
    pub fn load<'a>(
        conn: &mut DbConnection,
        refs: impl IntoIterator<Item = &'a str>,
    ) -> CoreResult<Names> {
        let mut wanted: HashMap<&str, BTreeSet<i64>> = HashMap::new();
        for r in refs {
            if let Some((kind, id)) = parse_ref(r) {
                wanted.entry(kind).or_default().insert(id);
            }
        }
        let ids = |kind: &str| -> Vec<i64> {
            wanted
                .get(kind)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default()
        };
        let mut names = Names::default();
        let user_ids = ids("user");
        if !user_ids.is_empty() {
            let rows: Vec<(i64, String, String, String, Option<String>)> = users::table
                .filter(users::id.eq_any(&user_ids))
                .select((
                    users::id,
                    users::email,
                    users::first_name,
                    users::last_name,
                    users::display_name,
                ))
                .load(conn)?;
            names.users = rows
                .into_iter()
                .map(|(id, email, first, last, display)| {
                    let name = user_name(display.as_deref(), &first, &last, &email);
                    (id, UserName { name, email })
                })
                .collect();
        }
        let org_ids = ids("organization");
        if !org_ids.is_empty() {
            names.organizations = organizations::table
                .filter(organizations::id.eq_any(&org_ids))
                .select((organizations::id, organizations::name))
                .load::<(i64, String)>(conn)?
                .into_iter()
                .collect();
        }
        let key_ids = ids("api_key");
        if !key_ids.is_empty() {
            names.api_keys = api_keys::table
                .filter(api_keys::id.eq_any(&key_ids))
                .select((api_keys::id, api_keys::name))
                .load::<(i64, String)>(conn)?
                .into_iter()
                .collect();
        }
        let invitation_ids = ids("invitation");
        if !invitation_ids.is_empty() {
            names.invitations = invitations::table
                .filter(invitations::id.eq_any(&invitation_ids))
                .select((invitations::id, invitations::email))
                .load::<(i64, String)>(conn)?
                .into_iter()
                .collect();
        }
        let tag_ids = ids("tag");
        if !tag_ids.is_empty() {
            names.tags = tags::table
                .filter(tags::id.eq_any(&tag_ids))
                .select((tags::id, tags::name))
                .load::<(i64, String)>(conn)?
                .into_iter()
                .collect();
        }
        Ok(names)
    }
}
