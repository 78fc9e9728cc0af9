//! The demo's notes about users, kept in the host's own table and added to
//! frontdesk's admin through its extension API: a "Notes" menu item and page,
//! a notes count on the users list, a "Has notes" filter of the users list, an
//! "Archive notes" bulk action, a "Notes" section on the user page, a typed
//! `plan` profile field (free or pro), and two routes of the admin API
//! (`GET`/`POST /ext/notes/users/{id}/notes`) listed in its OpenAPI document.

use std::collections::HashMap;
use std::sync::Arc;

use diesel::prelude::*;
use frontdesk::core::db::{BackendKind, DbConnection};
use frontdesk::core::profile::ProfileField;
use frontdesk::core::schema::users;
use frontdesk::core::users::condition::UserCondition;
use frontdesk::extensions::{
    AdminPage, ApiMethod, ApiRequest, ApiRoute, ApiTarget, BulkAction, Extension, NavItem,
    PageRequest, PageResponse, UserColumn, UserFilter, UserSection,
};
use frontdesk::{Action, Actor, CoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

diesel::table! {
    demo_notes (id) {
        id -> BigInt,
        user_id -> BigInt,
        body -> Text,
        archived -> Bool,
    }
}

/// The host's own table (a real app keeps it in its migrations).
pub fn create_table(conn: &mut DbConnection) -> QueryResult<()> {
    let sql = match conn.kind() {
        BackendKind::Sqlite => {
            "CREATE TABLE IF NOT EXISTS demo_notes (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             user_id BIGINT NOT NULL, body TEXT NOT NULL, archived BOOLEAN NOT NULL DEFAULT FALSE)"
        }
        BackendKind::Postgres => {
            "CREATE TABLE IF NOT EXISTS demo_notes (id BIGSERIAL PRIMARY KEY, \
             user_id BIGINT NOT NULL, body TEXT NOT NULL, archived BOOLEAN NOT NULL DEFAULT FALSE)"
        }
    };
    diesel::sql_query(sql).execute(conn)?;
    Ok(())
}

/// Adds a note about `user_id`, which `actor` must be allowed to edit.
pub fn add(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: i64,
    body: &str,
) -> Result<(), CoreError> {
    let body = body.trim();
    if body.is_empty() {
        return Err(CoreError::Invalid {
            field: "note",
            reason: "write something".into(),
        });
    }
    if body.chars().count() > 1000 {
        return Err(CoreError::TooLong {
            field: "note",
            max: 1000,
        });
    }
    frontdesk::core::users::get_for(conn, actor, user_id, Action::Edit)?;
    diesel::insert_into(demo_notes::table)
        .values((
            demo_notes::user_id.eq(user_id),
            demo_notes::body.eq(body),
            demo_notes::archived.eq(false),
        ))
        .execute(conn)?;
    frontdesk::core::audit::record(
        conn,
        actor,
        "notes.create",
        &format!("user:{user_id}"),
        None,
        serde_json::json!({}),
    )
}

#[derive(Serialize)]
struct NoteRow {
    user_id: i64,
    email: String,
    body: String,
    archived: bool,
}

fn index(conn: &mut DbConnection, req: &PageRequest) -> Result<PageResponse, CoreError> {
    if req.method == "POST" {
        let user_id = req
            .get("user_id")
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or(CoreError::Invalid {
                field: "user id",
                reason: "give the number of a user".into(),
            })?;
        add(conn, &req.actor, user_id, req.get("body").unwrap_or(""))?;
        return Ok(PageResponse::Redirect {
            to: "/ext/notes/".into(),
            ok: true,
            message: "Note added.".into(),
        });
    }
    let notes: Vec<(i64, String, bool)> = demo_notes::table
        .order(demo_notes::id.desc())
        .limit(100)
        .select((demo_notes::user_id, demo_notes::body, demo_notes::archived))
        .load(conn)?;
    let ids: Vec<i64> = notes.iter().map(|n| n.0).collect();
    let emails: HashMap<i64, String> = users::table
        .filter(users::id.eq_any(&ids))
        .select((users::id, users::email))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    let notes: Vec<NoteRow> = notes
        .into_iter()
        .map(|(user_id, body, archived)| NoteRow {
            user_id,
            email: emails.get(&user_id).cloned().unwrap_or_default(),
            body,
            archived,
        })
        .collect();
    Ok(PageResponse::Render {
        template: "notes/index.html".into(),
        context: serde_json::json!({ "notes": notes }),
    })
}

/// Live (not archived) notes per user, for a whole page of the users list.
pub fn counts(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<HashMap<i64, String>> {
    let rows: Vec<(i64, i64)> = demo_notes::table
        .filter(demo_notes::user_id.eq_any(ids))
        .filter(demo_notes::archived.eq(false))
        .group_by(demo_notes::user_id)
        .select((demo_notes::user_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(rows.into_iter().map(|(u, n)| (u, n.to_string())).collect())
}

/// "Has notes": users with (`yes`) or without (`no`) a live note, as SQL
/// over `users.id` that both backends run, for the page and the count.
pub fn has_notes(value: &str) -> UserCondition {
    let live = "EXISTS (SELECT 1 FROM demo_notes n WHERE n.user_id = users.id AND NOT n.archived)";
    if value == "yes" {
        UserCondition::sql(live)
    } else {
        UserCondition::sql("NOT ").push(live)
    }
}

fn archive(conn: &mut DbConnection, _actor: &Actor, ids: &[i64]) -> Result<(), CoreError> {
    diesel::update(demo_notes::table.filter(demo_notes::user_id.eq_any(ids)))
        .set(demo_notes::archived.eq(true))
        .execute(conn)?;
    Ok(())
}

fn section(
    conn: &mut DbConnection,
    _actor: &Actor,
    user_id: i64,
) -> Result<serde_json::Value, CoreError> {
    let notes: Vec<(String, bool)> = demo_notes::table
        .filter(demo_notes::user_id.eq(user_id))
        .order(demo_notes::id.desc())
        .select((demo_notes::body, demo_notes::archived))
        .load(conn)?;
    let notes: Vec<_> = notes
        .into_iter()
        .map(|(body, archived)| serde_json::json!({"body": body, "archived": archived}))
        .collect();
    Ok(serde_json::json!({ "notes": notes }))
}

/// A note as the API shows it.
fn note_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "body", "archived"],
        "properties": {
            "id": {"type": "integer", "format": "int64"},
            "body": {"type": "string"},
            "archived": {"type": "boolean"}
        }
    })
}

fn notes_of(conn: &mut DbConnection, user_id: i64) -> QueryResult<Vec<Value>> {
    let rows: Vec<(i64, String, bool)> = demo_notes::table
        .filter(demo_notes::user_id.eq(user_id))
        .order(demo_notes::id.desc())
        .select((demo_notes::id, demo_notes::body, demo_notes::archived))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, body, archived)| json!({"id": id, "body": body, "archived": archived}))
        .collect())
}

/// `GET /ext/notes/users/{id}/notes` (frontdesk has checked the caller may
/// view the user).
fn api_list(conn: &mut DbConnection, req: &ApiRequest) -> Result<Value, CoreError> {
    let user_id = req.user_id.unwrap_or_default();
    Ok(json!({ "notes": notes_of(conn, user_id)? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewNote {
    body: String,
}

/// `POST /ext/notes/users/{id}/notes`: adds a note (in one transaction with
/// its audit row) and answers it.
fn api_add(conn: &mut DbConnection, req: &ApiRequest) -> Result<Value, CoreError> {
    let user_id = req.user_id.unwrap_or_default();
    let note: NewNote = req.json()?;
    add(conn, &req.actor, user_id, &note.body)?;
    let newest = notes_of(conn, user_id)?.into_iter().next();
    newest.ok_or(CoreError::NotFound("note"))
}

/// The extension the demo registers with `FrontdeskBuilder::extension`.
pub struct NotesAdmin;

impl Extension for NotesAdmin {
    fn id(&self) -> &'static str {
        "notes"
    }

    fn nav(&self) -> Vec<NavItem> {
        vec![NavItem {
            label: "Notes".into(),
            path: "/ext/notes/".into(),
        }]
    }

    fn pages(&self) -> Vec<AdminPage> {
        vec![AdminPage {
            path: String::new(),
            permission: Action::View,
            handler: Arc::new(index),
        }]
    }

    fn user_columns(&self) -> Vec<UserColumn> {
        vec![UserColumn {
            label: "Notes".into(),
            load: Arc::new(counts),
        }]
    }

    fn user_filters(&self) -> Vec<UserFilter> {
        vec![UserFilter {
            name: "has_notes".into(),
            label: "Has notes".into(),
            choices: vec![("yes".into(), "yes".into()), ("no".into(), "no".into())],
            condition: Arc::new(has_notes),
        }]
    }

    fn profile_fields(&self) -> Vec<ProfileField> {
        vec![ProfileField::choice("plan", "Plan", ["free", "pro"])
            .help("The user's subscription plan.")
            .list_column()]
    }

    fn bulk_actions(&self) -> Vec<BulkAction> {
        vec![BulkAction {
            name: "archive".into(),
            label: "Archive notes".into(),
            permission: Action::Edit,
            run: Arc::new(archive),
        }]
    }

    fn user_sections(&self) -> Vec<UserSection> {
        vec![UserSection {
            title: "Notes".into(),
            template: "notes/section.html".into(),
            load: Arc::new(section),
        }]
    }

    fn api_routes(&self) -> Vec<ApiRoute> {
        let user = ApiTarget::User("id".into());
        vec![
            ApiRoute {
                method: ApiMethod::Get,
                path: "users/{id}/notes".into(),
                summary: "The notes about a user, newest first".into(),
                permission: Action::View,
                target: user.clone(),
                params: vec![],
                request: None,
                status: 200,
                response: json!({
                    "type": "object",
                    "required": ["notes"],
                    "properties": {"notes": {"type": "array", "items": note_schema()}}
                }),
                handler: Arc::new(api_list),
            },
            ApiRoute {
                method: ApiMethod::Post,
                path: "users/{id}/notes".into(),
                summary: "Add a note about a user".into(),
                permission: Action::Edit,
                target: user,
                params: vec![],
                request: Some(json!({
                    "type": "object",
                    "required": ["body"],
                    "additionalProperties": false,
                    "properties": {
                        "body": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 1000,
                            "pattern": "\\S"
                        }
                    }
                })),
                status: 201,
                response: note_schema(),
                handler: Arc::new(api_add),
            },
        ]
    }

    fn templates(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            (
                "notes/index.html",
                include_str!("templates/notes/index.html"),
            ),
            (
                "notes/section.html",
                include_str!("templates/notes/section.html"),
            ),
        ]
    }
}
