//! Opt-in start-up steps for scripts that drive the demo's JSON API (the
//! schemathesis run): `DEMO_API_KEY_FILE=path` creates a staff-owner API key
//! at every start and writes it to that file (readable by the owner only);
//! `DEMO_SAMPLE_DATA=1` adds a few organizations, users, sessions and a tag
//! to a database that has none yet. Neither happens unless asked for.

use std::io::Write;
use std::path::Path;

use frontdesk::core::api_keys::{self, KeyRole};
use frontdesk::core::users::{self, NewUser};
use frontdesk::core::{organizations, sessions, tags};
use frontdesk::{Actor, Frontdesk, OrgRole, StaffRole};

type Error = Box<dyn std::error::Error>;

/// Creates a staff-owner key in the name of `owner_email` and writes it to `file`.
pub fn write_key(fd: &Frontdesk, owner_email: &str, file: &Path) -> Result<(), Error> {
    let mut conn = fd.pool().get()?;
    let owner =
        users::find_by_email(&mut conn, owner_email)?.ok_or("the demo's staff owner is missing")?;
    let actor = users::actor_for(&mut conn, owner.id, None)?;
    let (_, secret) = api_keys::create(
        &mut conn,
        &actor,
        "demo start-up key",
        KeyRole::Staff(StaffRole::Owner),
    )?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(file)?;
    writeln!(out, "{}", secret.expose())?;
    Ok(())
}

/// Two organizations of four members each (owner, admin, two members), each
/// with a session, half of them tagged `beta`; nothing when `acme` exists.
pub fn sample_data(fd: &Frontdesk) -> Result<(), Error> {
    let mut conn = fd.pool().get()?;
    let c = &mut *conn;
    let sys = Actor::system();
    if organizations::get_by_slug(c, "acme").is_ok() {
        return Ok(());
    }
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
    Ok(())
}
