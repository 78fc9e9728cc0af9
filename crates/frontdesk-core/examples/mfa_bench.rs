//! What the second step of a sign-in costs on the server, next to the
//! password step, SQLite and (with `FRONTDESK_BENCH_POSTGRES=postgres://…/any_db`)
//! PostgreSQL, in a scratch database each:
//!
//! `cargo run --release -p frontdesk-core --example mfa_bench [users]`
//!
//! `users` (default 400) users each get a password and a confirmed
//! authenticator app. For each user, in turn: the password step
//! (`auth::sign_in`: argon2, lockout check, the attempt row, the challenge)
//! and then the second step (`auth::complete_second_step` with the app's
//! current code: the challenge looked up, the seed unsealed, the code
//! checked and marked used, the session opened) are each timed on their own.
//! Every user signs in once, so no code is a replay. Beside each, a user
//! without a factor signs in with the password alone (the session opens at
//! the password step). Prints p50/p95 of each step, and of the whole sign-in
//! with and without the app: their difference is what the second step adds.
//! The same figures are printed a second time without the password hash's
//! own time (argon2, measured on the calling thread around each
//! verification): both sign-ins verify one hash, so the hash adds nothing
//! to the difference but its run-to-run noise, which swamps a p95 of a
//! millisecond.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use frontdesk_core::auth::{self, AuthSettings, SecondFactor, SignInError};
use frontdesk_core::db::{self, Pool};
use frontdesk_core::mfa::{self, sealed::SecretBox, totp};
use frontdesk_core::passwords::argon2_time_on_this_thread;
use frontdesk_core::sessions::ClientInfo;
use frontdesk_core::users::{self as user_store, NewUser};
use totp_rs::{Algorithm, Secret, TOTP};

const PASSWORD: &str = "correct horse battery staple";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(400);

    let dir = std::env::temp_dir().join(format!("frontdesk-mfa-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = format!("sqlite://{}", dir.join("bench.db").display());
    let result = run("SQLite", &sqlite, n);
    std::fs::remove_dir_all(&dir)?;
    result?;

    if let Ok(admin) = std::env::var("FRONTDESK_BENCH_POSTGRES") {
        let name = format!("frontdesk_mfa_bench_{}", std::process::id());
        let mut c = PgConnection::establish(&admin)?;
        c.batch_execute(&format!("CREATE DATABASE {name}"))?;
        let (base, _) = admin
            .rsplit_once('/')
            .ok_or("FRONTDESK_BENCH_POSTGRES: no database name")?;
        let result = run("PostgreSQL", &format!("{base}/{name}"), n);
        c.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))?;
        result?;
    } else {
        println!("PostgreSQL: skipped (set FRONTDESK_BENCH_POSTGRES)");
    }
    Ok(())
}

fn code_now(seed: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    let generator = TOTP::new_unchecked(
        Algorithm::SHA1,
        6,
        1,
        30,
        seed.to_vec(),
        None,
        String::new(),
    );
    // The next step's code: the enrolment used the current one, and a code
    // is taken once; one step ahead is within the tolerance.
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    Ok(generator.generate(t.as_secs() + 30))
}

fn run(label: &str, url: &str, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let pool: Pool = db::connect(url, 2)?;
    let mut conn = pool.get()?;
    let keys = SecretBox::derive(&[9u8; 32], mfa::PURPOSE_TOTP)?;
    let hash = frontdesk_core::passwords::hash(PASSWORD)?;
    let mut people = Vec::with_capacity(n);
    let mut plain_people = Vec::with_capacity(n);
    for i in 0..n {
        // The same user without a factor: the password step opens the session.
        let plain = format!("plain{i}@bench.test");
        user_store::create(
            &mut conn,
            &frontdesk_core::Actor::system(),
            NewUser {
                email: plain.clone(),
                password_hash: Some(hash.clone()),
                ..NewUser::default()
            },
        )?;
        plain_people.push(plain);
        let email = format!("user{i}@bench.test");
        let user = user_store::create(
            &mut conn,
            &frontdesk_core::Actor::system(),
            NewUser {
                email: email.clone(),
                first_name: "Bench".into(),
                last_name: format!("{i}"),
                password_hash: Some(hash.clone()),
                ..NewUser::default()
            },
        )?;
        let begun = totp::begin(&mut conn, &keys, &user, "Bench", "Phone")?;
        let seed = Secret::Encoded(begun.secret_base32.clone()).to_bytes()?;
        let generator =
            TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, seed.clone(), None, String::new());
        totp::confirm(
            &mut conn,
            &keys,
            &user,
            begun.factor_id,
            &generator.generate_current()?,
        )?;
        people.push((email, seed));
    }

    let settings = AuthSettings::default();
    let client = ClientInfo {
        ip: Some("192.0.2.1".into()),
        user_agent: Some("bench".into()),
    };
    let mut password = Vec::with_capacity(n);
    let mut second = Vec::with_capacity(n);
    let mut plain = Vec::with_capacity(n);
    let mut both = Vec::with_capacity(n);
    // The same steps less the time spent inside argon2.
    let mut plain_rest = Vec::with_capacity(n);
    let mut both_rest = Vec::with_capacity(n);
    for ((email, seed), plain_email) in people.iter().zip(&plain_people) {
        let (start, hashing) = (Instant::now(), argon2_time_on_this_thread());
        auth::sign_in(&mut conn, plain_email, PASSWORD, &client, &settings, None)
            .map_err(|e| format!("plain sign-in refused: {e:?}"))?;
        plain.push(start.elapsed());
        plain_rest.push(start.elapsed() - (argon2_time_on_this_thread() - hashing));
        let (start, hashing) = (Instant::now(), argon2_time_on_this_thread());
        let challenge = match auth::sign_in(&mut conn, email, PASSWORD, &client, &settings, None) {
            Err(SignInError::SecondFactor { challenge, .. }) => challenge,
            other => return Err(format!("expected a second step, got {other:?}").into()),
        };
        password.push(start.elapsed());
        let password_rest = start.elapsed() - (argon2_time_on_this_thread() - hashing);
        let code = code_now(seed)?;
        let start = Instant::now();
        auth::complete_second_step(
            &mut conn,
            Some(&keys),
            challenge.expose(),
            SecondFactor::Totp(&code),
            &client,
            &settings,
            None,
        )
        .map_err(|e| format!("second step refused: {e:?}"))?;
        second.push(start.elapsed());
        both.push(password[password.len() - 1] + second[second.len() - 1]);
        both_rest.push(password_rest + second[second.len() - 1]);
    }
    println!(
        "{label}: {n} sign-ins each; password step p50 {:.2} ms, p95 {:.2} ms; second step (TOTP) p50 {:.3} ms, p95 {:.3} ms",
        ms(pct(&mut password, 50)),
        ms(pct(&mut password, 95)),
        ms(pct(&mut second, 50)),
        ms(pct(&mut second, 95)),
    );
    let (p50_plain, p95_plain) = (pct(&mut plain, 50), pct(&mut plain, 95));
    let (p50_both, p95_both) = (pct(&mut both, 50), pct(&mut both, 95));
    println!(
        "{label}: whole sign-in without a factor p50 {:.2} ms, p95 {:.2} ms; with the app p50 {:.2} ms, p95 {:.2} ms; added p50 {:+.3} ms, p95 {:+.3} ms",
        ms(p50_plain),
        ms(p95_plain),
        ms(p50_both),
        ms(p95_both),
        ms(p50_both) - ms(p50_plain),
        ms(p95_both) - ms(p95_plain),
    );
    let (p50_plain, p95_plain) = (pct(&mut plain_rest, 50), pct(&mut plain_rest, 95));
    let (p50_both, p95_both) = (pct(&mut both_rest, 50), pct(&mut both_rest, 95));
    println!(
        "{label}: the same outside argon2: without a factor p50 {:.3} ms, p95 {:.3} ms; with the app p50 {:.3} ms, p95 {:.3} ms; added p50 {:+.3} ms, p95 {:+.3} ms",
        ms(p50_plain),
        ms(p95_plain),
        ms(p50_both),
        ms(p95_both),
        ms(p50_both) - ms(p50_plain),
        ms(p95_both) - ms(p95_plain),
    );
    Ok(())
}

fn pct(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
