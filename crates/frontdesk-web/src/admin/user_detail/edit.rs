//! The profile form: names, email and the typed profile fields.

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::authz::Action;
use frontdesk_core::profile::ProfileKind;
use frontdesk_core::users::{self as core_users, UserUpdate};
use serde_json::{Map, Value};

use super::change;
use crate::admin::{Admin, State};
use crate::error::WebError;

pub async fn edit(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let declared = state.settings().import.profile_fields.clone();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, f| {
            let current = core_users::get_for(conn, actor, id, Action::Edit)?;
            // Profile fields: the declared ones by kind (an unticked box is
            // no), the others shown (an empty value removes one), one new.
            let mut profile = Map::new();
            for d in &declared {
                let name = format!("profile.{}", d.key);
                let v = match d.kind {
                    ProfileKind::Boolean => Value::Bool(f.get(&name) == Some("yes")),
                    _ => Value::String(f.get(&name).unwrap_or("").to_owned()),
                };
                profile.insert(d.key.clone(), v);
            }
            for (k, v) in current.profile_map() {
                if declared.iter().any(|d| d.key == k) {
                    continue;
                }
                match f.get(&format!("profile.{k}")) {
                    Some(new) => {
                        profile.insert(k, Value::String(new.to_owned()));
                    }
                    None if f.0.iter().any(|(key, _)| key == &format!("profile.{k}")) => {}
                    None => {
                        profile.insert(k, v);
                    }
                }
            }
            if let Some(key) = f.get("new_field") {
                profile.insert(key.to_owned(), Value::String(f.text("new_value")));
            }
            let profile = frontdesk_core::profile::validate(&declared, &profile)?;
            let display = f.text("display_name");
            core_users::update(
                conn,
                actor,
                id,
                UserUpdate {
                    first_name: Some(f.text("first_name")),
                    last_name: Some(f.text("last_name")),
                    display_name: Some((!display.is_empty()).then_some(display)),
                    email_verified: Some(f.get("email_verified") == Some("yes")),
                    profile: Some(profile),
                },
            )
        },
        |_| "Profile saved.".into(),
    )
    .await
}
