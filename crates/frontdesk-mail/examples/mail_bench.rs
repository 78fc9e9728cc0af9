//! Delivery benchmark: queues N invitations (default 10,000) through the real
//! invitation service, then times the outbox worker delivering them over
//! pooled SMTP connections to a loopback SMTP server, and prints mails/s.
//!
//! cargo run --release -p frontdesk-mail --features test-smtp --example mail_bench -- [COUNT] [DATABASE_URL]
//!
//! Without DATABASE_URL a fresh SQLite file in a temporary folder is used; a
//! PostgreSQL URL must name an empty database.

use std::time::{Duration, Instant};

use frontdesk_core::invitations::{self, InvitationSettings, NewInvitation};
use frontdesk_core::{db, organizations, Actor, OrgRole};
use frontdesk_mail::test_smtp::TestSmtp;
use frontdesk_mail::{MailConfig, Mailer, SmtpConfig, SmtpSecurity, Templates, Transport};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> BenchResult<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = match args.next() {
        Some(n) => n.parse().map_err(|e| format!("COUNT {n:?}: {e}"))?,
        None => 10_000,
    };
    let dir = tempfile::tempdir()?;
    let url = match args.next() {
        Some(u) => u,
        None => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    let backend = if url.starts_with("postgres") {
        "postgresql"
    } else {
        "sqlite"
    };
    let pool = db::connect(&url, 8)?;

    let seed_pool = pool.clone();
    let seeded = Instant::now();
    tokio::task::spawn_blocking(move || -> BenchResult<()> {
        let mut conn = seed_pool.get()?;
        let sys = Actor::system();
        let org = organizations::create(&mut conn, &sys, "bench", "Bench Org", "")?;
        let settings = InvitationSettings::new("https://app.example.com")?;
        let templates = Templates::new()?;
        for i in 0..count {
            let new = NewInvitation {
                organization_id: org.id,
                email: format!("invitee{i}@example.com"),
                role: OrgRole::Member,
                message: Some("Welcome to the team!".into()),
                first_name: None,
                last_name: None,
                groups: Vec::new(),
            };
            invitations::create(&mut conn, &sys, &settings, &templates, &new)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())??;
    let seed_secs = seeded.elapsed().as_secs_f64();

    let smtp = TestSmtp::start().await?;
    let pool_size = 16;
    let transport = Transport::smtp(
        &SmtpConfig::new("127.0.0.1", SmtpSecurity::None)
            .port(smtp.port())
            .pool_size(pool_size)
            .timeout(Duration::from_secs(10)),
    )?;
    let mut config = MailConfig::new("Bench <no-reply@bench.example>")?;
    config.batch_size = 200;
    config.concurrency = pool_size as usize;
    let mailer = Mailer::new(pool, transport, config);

    let started = Instant::now();
    let report = mailer.deliver_all_due().await?;
    let secs = started.elapsed().as_secs_f64();
    let received = smtp.wait_for(count, Duration::from_secs(10)).await;

    println!("backend:            {backend}");
    println!("invitations queued: {count} in {seed_secs:.1} s");
    println!(
        "delivered:          {} sent, {} retried, {} failed; {received} received by the SMTP server",
        report.sent, report.retried, report.failed
    );
    println!(
        "SMTP connections:   {} (pool of {pool_size})",
        smtp.connections()
    );
    println!("time:               {secs:.2} s");
    println!(
        "throughput:         {:.0} mails/s",
        report.sent as f64 / secs
    );
    if received != count || report.sent != count {
        return Err(format!("expected {count} mails, the server received {received}").into());
    }
    Ok(())
}
