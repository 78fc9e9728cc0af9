//! Rows whose email already has an account: skipped, or updated in place
//! in update mode; tags found by name.

use std::collections::HashMap;

use diesel::prelude::*;
use serde_json::{json, Value};

use crate::audit;
use crate::authz::{can, Action, Actor, Target};
use crate::db::DbConnection;
use crate::error::CoreError;
use crate::schema::{tags, users};
use crate::time::now;
use crate::users::{search_text, User};

use super::*;

/// Rows per transaction: the configured batch size, raised for a large file
/// so that it is written in about [`MAX_BATCHES`] transactions (at most
/// [`MAX_BATCH`] rows each). Each commit has a fixed cost, and on SQLite each
/// one adds a segment to the search index that later has to be merged; a
/// bigger batch holds the write lock longer (up to about a second for 20,000
/// rows on the 2-core machine of the README figures).
pub fn batch_rows(config: &ImportConfig, total_rows: u64) -> usize {
    let spread = usize::try_from(total_rows.div_ceil(MAX_BATCHES)).unwrap_or(MAX_BATCH);
    config.batch_size.max(spread).clamp(1, MAX_BATCH)
}

/// What became of a batch row whose user exists: index, outcome, code, reason.
pub(super) type Existing = (usize, Outcome, &'static str, String);

/// Update mode: changes existing users' names and profile fields from the
/// non-empty cells, when the actor may edit them.
pub(super) fn update_existing(
    conn: &mut DbConnection,
    actor: &Actor,
    batch: &[Pending],
    rows: &[usize],
    write: bool,
) -> Result<Vec<Existing>, ImportError> {
    let emails: Vec<&str> = rows.iter().map(|i| batch[*i].email.as_str()).collect();
    let found: Vec<User> = users::table
        .filter(users::email.eq_any(&emails))
        .select(User::as_select())
        .load(conn)?;
    let ids: Vec<i64> = found.iter().map(|u| u.id).collect();
    let roles = crate::users::roles_of_many(conn, &ids)?;
    let by_email: HashMap<&str, &User> = found.iter().map(|u| (u.email.as_str(), u)).collect();
    let t = now();
    let mut out = Vec::with_capacity(rows.len());
    for &i in rows {
        let p = &batch[i];
        let Some(u) = by_email.get(p.email.as_str()) else {
            out.push((
                i,
                Outcome::Skipped,
                "exists",
                "a user with this email already exists".into(),
            ));
            continue;
        };
        let orgs = roles
            .iter()
            .filter(|r| r.0 == u.id)
            .map(|r| (r.1, r.2))
            .collect();
        let target = Target::User {
            id: u.id,
            staff_role: u.staff_role(),
            orgs,
        };
        if !can(actor, Action::Edit, &target) {
            out.push((
                i,
                Outcome::Rejected,
                "update_not_allowed",
                "you may not change this existing user".into(),
            ));
            continue;
        }
        let pick = |new: &str, old: &str| {
            if new.is_empty() {
                old.to_owned()
            } else {
                new.to_owned()
            }
        };
        let first = pick(&p.first_name, &u.first_name);
        let last = pick(&p.last_name, &u.last_name);
        let display = p.display_name.clone().or_else(|| u.display_name.clone());
        let old_profile = u.profile_map();
        let mut profile = old_profile.clone();
        profile.extend(p.profile.iter().map(|(k, v)| (k.clone(), v.clone())));
        if first == u.first_name
            && last == u.last_name
            && display == u.display_name
            && profile == old_profile
        {
            out.push((
                i,
                Outcome::Skipped,
                "unchanged",
                "already exists with the same values".into(),
            ));
            continue;
        }
        if write {
            diesel::update(users::table.find(u.id))
                .set((
                    users::first_name.eq(&first),
                    users::last_name.eq(&last),
                    users::display_name.eq(&display),
                    users::profile.eq(Value::Object(profile.clone()).to_string()),
                    users::search_text.eq(search_text(
                        &u.email,
                        &first,
                        &last,
                        display.as_deref(),
                        &profile,
                    )),
                    users::updated_at.eq(t),
                ))
                .execute(conn)?;
            crate::sessions::sessions_changed(
                conn,
                crate::session_cache::Invalidation::User(u.id),
            )?;
            // As an edit by hand: its audit row and `UserUpdated` event.
            audit::record(
                conn,
                actor,
                "user.update",
                &format!("user:{}", u.id),
                None,
                json!({
                    "first_name": first, "last_name": last, "display_name": display,
                    "profile": p.profile, "via": "import", "row": p.row,
                }),
            )?;
        }
        out.push((i, Outcome::Updated, "updated", String::new()));
    }
    Ok(out)
}

pub(super) fn self_tag(
    known: &HashMap<String, i64>,
    fresh: &[(String, i64)],
    name: &str,
) -> Option<i64> {
    known
        .get(name)
        .copied()
        .or_else(|| fresh.iter().find(|(n, _)| n == name).map(|(_, id)| *id))
}

pub(super) fn tags_by_name(conn: &mut DbConnection, name: &str) -> Result<Option<i64>, CoreError> {
    Ok(tags::table
        .filter(tags::name.eq(name))
        .select(tags::id)
        .first(conn)
        .optional()?)
}
