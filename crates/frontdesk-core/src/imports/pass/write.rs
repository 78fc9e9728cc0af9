//! Writing a batch of checked rows in one transaction.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use serde_json::{json, Value};

use crate::audit;
use crate::db::{on_backend, DbConnection};
use crate::error::CoreError;
use crate::schema::{audit_events, tags, users};
use crate::time::now;
use crate::users::{search_text, unique_violation};

use super::super::*;
use super::*;

/// What a batch's write did: rows created, rows not created (with their
/// outcome), mails queued, and warnings.
pub(super) type Written = (Vec<usize>, Vec<Existing>, u64, Vec<String>);

impl<'a> Pass<'a> {
    /// Sorts the batch into existing users (skipped) and new ones, and writes
    /// the new ones in one transaction when this pass writes.
    pub(super) fn flush(&mut self) -> Result<(), ImportError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        // A user created meanwhile by someone else makes the insert fail; the
        // retry sees it as existing.
        let mut attempt = 0;
        let (created, existing, mails, group_warnings) = loop {
            attempt += 1;
            match self.write_batch(&batch) {
                Err(ImportError::Core(CoreError::Database(e)))
                    if attempt < 3 && unique_violation(&e) =>
                {
                    continue
                }
                other => break other?,
            }
        };
        for (i, outcome, code, reason) in existing {
            let p = &batch[i];
            self.note(p.row, p.email.clone(), outcome, code, reason);
        }
        for i in created {
            let p = &batch[i];
            self.note(
                p.row,
                p.email.clone(),
                Outcome::Created,
                "created",
                String::new(),
            );
        }
        self.report.welcome_mails_queued += mails;
        self.report.warnings.extend(group_warnings);
        self.committed_rows = self.report.rows_done;
        Ok(())
    }

    /// Returns the indexes created and skipped, the mails queued and the
    /// warnings of group joins refused.
    pub(super) fn write_batch(&mut self, batch: &[Pending]) -> Result<Written, ImportError> {
        let write = self.write;
        let update = self.options.update_existing;
        let new_tags: Vec<String> = {
            let mut t: Vec<String> = batch
                .iter()
                .flat_map(|p| p.tags.iter())
                .filter(|t| !self.tags.contains_key(*t))
                .cloned()
                .collect();
            t.sort();
            t.dedup();
            t
        };
        let actor = self.actor;
        let actor_label = actor.label();
        let import_id = self.options.import_id;
        let source_name = self.options.source_name.as_str();
        let mail = self.options.welcome_mail.clone();
        let (created, skipped, mails, tag_ids, group_warnings) = {
            let body = |conn: &mut DbConnection| -> Result<_, ImportError> {
                let emails: Vec<&str> = batch.iter().map(|p| p.email.as_str()).collect();
                let mut existing: HashSet<String> = HashSet::new();
                for chunk in emails.chunks(EMAILS_PER_LOOKUP) {
                    existing.extend(
                        users::table
                            .filter(users::email.eq_any(chunk))
                            .select(users::email)
                            .load::<String>(conn)?,
                    );
                }
                let (skipped, created): (Vec<usize>, Vec<usize>) =
                    (0..batch.len()).partition(|i| existing.contains(&batch[*i].email));
                let skipped = if update && !skipped.is_empty() {
                    let mut out = Vec::with_capacity(skipped.len());
                    for chunk in skipped.chunks(EMAILS_PER_LOOKUP) {
                        out.extend(update_existing(conn, actor, batch, chunk, write)?);
                    }
                    out
                } else {
                    skipped
                        .into_iter()
                        .map(|i| {
                            let reason = "a user with this email already exists".to_owned();
                            (i, Outcome::Skipped, "exists", reason)
                        })
                        .collect()
                };
                if !write || created.is_empty() {
                    return Ok((created, skipped, 0u64, Vec::new(), Vec::new()));
                }
                let t = now();
                let mut tag_ids: Vec<(String, i64)> = Vec::new();
                for name in &new_tags {
                    let id: i64 = diesel::insert_into(tags::table)
                        .values((tags::name.eq(name), tags::created_at.eq(t)))
                        .returning(tags::id)
                        .get_result(conn)?;
                    audit::record(
                        conn,
                        actor,
                        "tag.create",
                        &format!("tag:{id}"),
                        None,
                        json!({"name": name, "via": "import"}),
                    )?;
                    tag_ids.push((name.clone(), id));
                }
                // Inserted in email order: the email index (and, partly, the
                // name index) is then written page by page instead of at
                // random, which cut PostgreSQL's CPU for `users` by a fifth
                // in 20,000-row batches. Within a batch, ids follow the email
                // order rather than the file's.
                let mut order = created.clone();
                order.sort_unstable_by(|a, b| batch[*a].email.cmp(&batch[*b].email));
                let rows: Vec<UserRow> = order
                    .iter()
                    .map(|i| {
                        let p = &batch[*i];
                        UserRow {
                            email: &p.email,
                            first_name: &p.first_name,
                            last_name: &p.last_name,
                            display_name: p.display_name.as_deref(),
                            staff_role: p.staff_role.map(|r| r.as_str()),
                            profile: Value::Object(p.profile.clone()).to_string(),
                            search_text: search_text(
                                &p.email,
                                &p.first_name,
                                &p.last_name,
                                p.display_name.as_deref(),
                                &p.profile,
                            ),
                            created_at: t,
                            updated_at: t,
                        }
                    })
                    .collect();
                let mut ids: Vec<(i64, String)> = Vec::with_capacity(rows.len());
                for chunk in rows.chunks(USERS_PER_INSERT) {
                    ids.extend(on_backend!(conn, |c| diesel::insert_into(users::table)
                        .values(chunk)
                        .returning((users::id, users::email))
                        .get_results::<(i64, String)>(c))?);
                }
                let id_of: HashMap<&str, i64> =
                    ids.iter().map(|(id, e)| (e.as_str(), *id)).collect();
                let mut member_rows = Vec::new();
                let mut tag_rows = Vec::new();
                for i in &created {
                    let p = &batch[*i];
                    let Some(&user_id) = id_of.get(p.email.as_str()) else {
                        continue;
                    };
                    for (org, role) in &p.memberships {
                        member_rows.push(MembershipRow {
                            user_id,
                            organization_id: *org,
                            role: role.as_str(),
                            created_at: t,
                        });
                    }
                    for name in &p.tags {
                        let tag_id = self_tag(&self.tags, &tag_ids, name);
                        if let Some(tag_id) = tag_id {
                            tag_rows.push(UserTagRow {
                                user_id,
                                tag_id,
                                created_at: t,
                            });
                        }
                    }
                }
                // In user-id order (the email order above), not the file's:
                // each membership and tag index then grows at its end, or at
                // one point per organization or tag, instead of taking rows
                // all over the batch's range (about a sixth less time for
                // memberships on SQLite at 1,000,000 rows).
                member_rows.sort_unstable_by_key(|m| (m.user_id, m.organization_id));
                tag_rows.sort_unstable_by_key(|t| (t.user_id, t.tag_id));
                insert_sets(conn, &member_rows, &tag_rows, t)?;
                // One `user.create` event per created user, as if each had been
                // created by hand, naming the import that made it.
                let events: Vec<AuditRow> = created
                    .iter()
                    .filter_map(|i| {
                        let p = &batch[*i];
                        let user_id = *id_of.get(p.email.as_str())?;
                        Some(AuditRow {
                            actor: &actor_label,
                            action: "user.create",
                            target: format!("user:{user_id}"),
                            organization_id: p.memberships.first().map(|(o, _)| *o),
                            details: json!({
                                "email": p.email, "staff_role": p.staff_role, "via": "import",
                                "import": import_id, "source": source_name, "row": p.row,
                            })
                            .to_string(),
                            ip: actor.ip.as_deref(),
                            created_at: t,
                        })
                    })
                    .collect();
                for chunk in events.chunks(2_000) {
                    on_backend!(conn, |c| diesel::insert_into(audit_events::table)
                        .values(chunk)
                        .execute(c))?;
                }
                // And the typed event of each (see `events`), like `audit::record`'s.
                for row in &events {
                    crate::events::emit(
                        conn,
                        crate::events::Event::from_audit(
                            row.actor,
                            row.action,
                            &row.target,
                            row.organization_id,
                            &Value::Null,
                        ),
                    )?;
                }
                // Groups one by one, as by hand: the join's audit row and
                // event, the group's role, and its licences' seat limits. A
                // join refused for want of a seat keeps the user (created)
                // and is named in the report's warnings.
                let mut group_warnings = Vec::new();
                for i in &created {
                    let p = &batch[*i];
                    let Some(&user_id) = id_of.get(p.email.as_str()) else {
                        continue;
                    };
                    for (org, group, name) in &p.groups {
                        match crate::groups::add_member(conn, actor, *org, *group, user_id) {
                            Ok(_) => {}
                            Err(CoreError::SeatLimit { licence, .. }) => group_warnings.push(format!(
                                "row {}: {} was not added to group {name:?}: licence {licence:?} has no seat left",
                                p.row, p.email
                            )),
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                let mut mails = 0u64;
                if let Some(m) = &mail {
                    for i in &created {
                        let p = &batch[*i];
                        welcome_or_invite(conn, actor, m, p)?;
                        mails += 1;
                    }
                }
                Ok((created, skipped, mails, tag_ids, group_warnings))
            };
            // Writing batches take SQLite's write lock before their first read.
            if write {
                crate::db::write_transaction(self.conn, body)?
            } else {
                self.conn.transaction(body)?
            }
        };
        self.tags.extend(tag_ids);
        Ok((created, skipped, mails, group_warnings))
    }
}

/// The memberships and tags of a batch's new users, all created at `t`. On
/// PostgreSQL each row carries the copy of its user's sign-up time
/// (`user_created_at`, for the set filters' pages in sign-up order), so the
/// trigger that otherwise looks it up in `users` row by row is not called:
/// about 14 µs a row, a sixth of a 1,000,000-row import.
fn insert_sets(
    conn: &mut DbConnection,
    member_rows: &[MembershipRow],
    tag_rows: &[UserTagRow],
    t: chrono::NaiveDateTime,
) -> QueryResult<()> {
    match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(c) => {
            use crate::schema::{memberships, user_tags};
            let _ = t; // SQLite keeps no copy of the sign-up time.
            for chunk in member_rows.chunks(5_000) {
                diesel::insert_into(memberships::table)
                    .values(chunk)
                    .execute(c)?;
            }
            for chunk in tag_rows.chunks(5_000) {
                diesel::insert_into(user_tags::table)
                    .values(chunk)
                    .execute(c)?;
            }
        }
        #[cfg(feature = "postgres")]
        DbConnection::Pg(c) => {
            use crate::schema::pg_sort_keys::{memberships as m, user_tags as ut};
            for chunk in member_rows.chunks(5_000) {
                let rows: Vec<_> = chunk
                    .iter()
                    .map(|r| {
                        (
                            m::user_id.eq(r.user_id),
                            m::organization_id.eq(r.organization_id),
                            m::role.eq(r.role),
                            m::created_at.eq(r.created_at),
                            m::user_created_at.eq(t),
                        )
                    })
                    .collect();
                diesel::insert_into(m::table).values(&rows).execute(c)?;
            }
            for chunk in tag_rows.chunks(5_000) {
                let rows: Vec<_> = chunk
                    .iter()
                    .map(|r| {
                        (
                            ut::user_id.eq(r.user_id),
                            ut::tag_id.eq(r.tag_id),
                            ut::created_at.eq(r.created_at),
                            ut::user_created_at.eq(t),
                        )
                    })
                    .collect();
                diesel::insert_into(ut::table).values(&rows).execute(c)?;
            }
        }
    }
    Ok(())
}
