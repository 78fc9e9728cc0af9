//! A host app that mounts frontdesk with only its JSON API in use, seeded with
//! a few organizations and users, for trying the API (and fuzzing it against
//! its OpenAPI document). It prints a staff-owner API key, then serves.
//!
//!     cargo run --example api_server -- 127.0.0.1:8089 sqlite://api.db
//!
//! Then: `curl -H "Authorization: Bearer $KEY" http://127.0.0.1:8089/admin/api/v1/users`.

use std::io::Write;

use actix_web::{App, HttpServer};
use frontdesk::core::api_keys::{self, KeyRole};
use frontdesk::core::users::{self, NewUser};
use frontdesk::core::{organizations, sessions, tags};
use frontdesk::{Actor, Frontdesk, OrgRole, StaffRole};

fn seed(frontdesk: &Frontdesk) -> Result<String, Box<dyn std::error::Error>> {
    let mut conn = frontdesk.pool().get()?;
    let c = &mut *conn;
    let sys = Actor::system();
    let owner = users::create(
        c,
        &sys,
        NewUser {
            email: "owner@example.com".into(),
            first_name: "Olive".into(),
            staff_role: Some(StaffRole::Owner),
            email_verified: true,
            ..NewUser::default()
        },
    )?;
    let beta = tags::create(c, &sys, "beta")?;
    for (slug, name) in [("acme", "Acme"), ("globex", "Globex")] {
        let org = organizations::create(c, &sys, slug, name, "")?;
        for (i, role) in [
            OrgRole::Owner,
            OrgRole::Admin,
            OrgRole::Member,
            OrgRole::Member,
        ]
        .into_iter()
        .enumerate()
        {
            let u = users::create(
                c,
                &sys,
                NewUser {
                    email: format!("{}{i}@{slug}.example", role.as_str()),
                    first_name: format!("{name} {i}"),
                    organization: Some((org.id, role)),
                    ..NewUser::default()
                },
            )?;
            sessions::create(c, u.id, &Default::default(), &Default::default())?;
            if i % 2 == 0 {
                tags::assign(c, &sys, u.id, beta.id)?;
            }
        }
    }
    let owner_actor = users::actor_for(c, owner.id, None)?;
    let (_, secret) =
        api_keys::create(c, &owner_actor, "example", KeyRole::Staff(StaffRole::Owner))?;
    Ok(secret.expose().to_owned())
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8089".into());
    let db = args
        .next()
        .unwrap_or_else(|| "sqlite://api-server.db".into());
    let frontdesk = Frontdesk::builder()
        .database_url(&db)
        .base_url(format!("http://{addr}"))
        .build()?;
    let key = seed(&frontdesk)?;
    let mut out = std::io::stdout();
    writeln!(out, "FRONTDESK_API_KEY={key}")?;
    writeln!(out, "listening on http://{addr}/admin/api/v1")?;
    out.flush()?;
    HttpServer::new(move || App::new().configure(frontdesk.configure()))
        .workers(2)
        .bind(addr)?
        .run()
        .await?;
    Ok(())
}
