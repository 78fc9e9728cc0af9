//! Tags: named segments of users, used by the users query's all/any/none filters.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::audit;
use crate::authz::{authorize, Action, Actor, Target};
use crate::db::DbConnection;
use crate::error::{CoreError, CoreResult};
use crate::schema::{tags, user_tags};
use crate::time::now;
use crate::users::{self, unique_violation};
use crate::validate;

/// A tag admins put on users to group and filter them.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = tags)]
pub struct Tag {
    /// The tag's id.
    pub id: i64,
    /// Its name: lower-case, at most 64 characters, without `|` or `,`.
    pub name: String,
    /// When it was created (UTC).
    pub created_at: NaiveDateTime,
}

/// Every tag, by name. No access check.
pub fn list(conn: &mut DbConnection) -> CoreResult<Vec<Tag>> {
    Ok(tags::table
        .order(tags::name.asc())
        .select(Tag::as_select())
        .load(conn)?)
}

/// The tag with this name (trimmed and lower-cased first), if any.
pub fn get_by_name(conn: &mut DbConnection, name: &str) -> CoreResult<Option<Tag>> {
    Ok(tags::table
        .filter(tags::name.eq(name.trim().to_lowercase()))
        .select(Tag::as_select())
        .first(conn)
        .optional()?)
}

/// Creates a tag. Only staff who may manage the site can; refuses an
/// empty or too-long name, one with `|` or `,`, and a taken one
/// ([`CoreError::DuplicateTag`]).
pub fn create(conn: &mut DbConnection, actor: &Actor, name: &str) -> CoreResult<Tag> {
    authorize(actor, Action::ManageSite, &Target::Site)?;
    let name = validate::text("tag", name, 64)?.to_lowercase();
    if name.is_empty() || name.contains(['|', ',']) {
        return Err(CoreError::Invalid {
            field: "tag",
            reason: "must be non-empty, without '|' or ','".into(),
        });
    }
    crate::db::write_transaction(conn, |conn| {
        let tag = diesel::insert_into(tags::table)
            .values((tags::name.eq(&name), tags::created_at.eq(now())))
            .returning(tags::all_columns)
            .get_result(conn);
        let tag: Tag = match tag {
            Err(e) if unique_violation(&e) => return Err(CoreError::DuplicateTag(name.clone())),
            other => other?,
        };
        audit::record(
            conn,
            actor,
            "tag.create",
            &format!("tag:{}", tag.id),
            None,
            json!({"name": name}),
        )?;
        Ok(tag)
    })
}

/// Tags a user; tagging twice is not an error.
pub fn assign(conn: &mut DbConnection, actor: &Actor, user_id: i64, tag_id: i64) -> CoreResult<()> {
    crate::db::write_transaction(conn, |conn| {
        users::get_for(conn, actor, user_id, Action::Edit)?;
        let exists: i64 = user_tags::table
            .find((user_id, tag_id))
            .count()
            .get_result(conn)?;
        if exists > 0 {
            return Ok(());
        }
        let r = diesel::insert_into(user_tags::table)
            .values((
                user_tags::user_id.eq(user_id),
                user_tags::tag_id.eq(tag_id),
                user_tags::created_at.eq(now()),
            ))
            .execute(conn);
        match r {
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            )) => return Err(CoreError::NotFound("tag")),
            other => other?,
        };
        audit::record(
            conn,
            actor,
            "tag.assign",
            &format!("user:{user_id}"),
            None,
            json!({"tag": tag_id}),
        )?;
        Ok(())
    })
}

/// Takes a tag off a user; nothing happens when the user does not carry
/// it. The actor must be allowed to edit the user.
pub fn unassign(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: i64,
    tag_id: i64,
) -> CoreResult<()> {
    crate::db::write_transaction(conn, |conn| {
        users::get_for(conn, actor, user_id, Action::Edit)?;
        let n = diesel::delete(user_tags::table.find((user_id, tag_id))).execute(conn)?;
        if n > 0 {
            audit::record(
                conn,
                actor,
                "tag.unassign",
                &format!("user:{user_id}"),
                None,
                json!({"tag": tag_id}),
            )?;
        }
        Ok(())
    })
}

/// The user's tags, by name. No access check.
pub fn tags_of(conn: &mut DbConnection, user_id: i64) -> CoreResult<Vec<Tag>> {
    Ok(tags::table
        .inner_join(user_tags::table)
        .filter(user_tags::user_id.eq(user_id))
        .order(tags::name.asc())
        .select(Tag::as_select())
        .load(conn)?)
}

/// The tags of many users at once, as `(user_id, tag)` (for list pages).
pub fn tags_of_many(conn: &mut DbConnection, ids: &[i64]) -> CoreResult<Vec<(i64, Tag)>> {
    Ok(tags::table
        .inner_join(user_tags::table)
        .filter(user_tags::user_id.eq_any(ids))
        .order(tags::name.asc())
        .select((user_tags::user_id, Tag::as_select()))
        .load(conn)?)
}
