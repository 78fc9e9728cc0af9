//! `frontdesk outbox`: where queued mail stands (counts by status, failed and
//! stuck mail with its last error), requeueing failed mail, and delivering
//! what is due once through a given transport.

use std::process::ExitCode;

use chrono::NaiveDateTime;
use clap::Args;
use serde_json::json;

use frontdesk_core::authz::Actor;
use frontdesk_core::db::{self, DbConnection};
use frontdesk_core::outbox::{self, OutboxMail};
use frontdesk_core::{audit, CoreError};
use frontdesk_mail::{DeliveryReport, MailConfig, Mailer, Transport};

use crate::{conn, connect, CliResult};

#[derive(Args)]
pub struct OutboxArgs {
    /// Queue these failed mails (outbox ids) again, with a fresh attempt count.
    #[arg(long, value_name = "ID", num_args = 1.., value_delimiter = ',')]
    retry: Vec<i64>,
    /// Queue every failed mail again (except mail whose link was superseded).
    #[arg(long, conflicts_with = "retry")]
    retry_failed: bool,
    /// How many mails each list shows.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    limit: i64,
    #[command(flatten)]
    send: SendArgs,
}

/// Delivering from the command line instead of waiting for the app's worker.
#[derive(Args)]
pub struct SendArgs {
    /// Deliver everything due in the outbox once, through --mail-url (mail that
    /// fails stays queued for a retry, as with the app's worker).
    #[arg(long, requires_all = ["mail_url", "mail_from"])]
    pub send: bool,
    /// `smtp://user:password@host:587`, `smtps://…`, `smtp://host:25?tls=none`
    /// or `file:///folder`.
    #[arg(long, env = "FRONTDESK_MAIL_URL", hide_env_values = true)]
    pub mail_url: Option<String>,
    /// The sender, e.g. `Acme <no-reply@acme.example>`.
    #[arg(long, env = "FRONTDESK_MAIL_FROM")]
    pub mail_from: Option<String>,
}

impl SendArgs {
    /// Checks the transport and sender before anything is written, so a typo
    /// in --mail-url does not leave half the work done.
    pub fn mailer(&self, pool: &db::Pool) -> CliResult<Option<Mailer>> {
        if !self.send {
            return Ok(None);
        }
        let (Some(url), Some(from)) = (&self.mail_url, &self.mail_from) else {
            return Err("--send needs --mail-url and --mail-from".into());
        };
        let transport = Transport::from_url(url).map_err(|e| format!("--mail-url: {e}"))?;
        let config = MailConfig::new(from).map_err(|e| format!("--mail-from: {e}"))?;
        Ok(Some(Mailer::new(pool.clone(), transport, config)))
    }
}

/// Runs delivery rounds until nothing is due.
pub fn deliver(mailer: Mailer) -> CliResult<DeliveryReport> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the mail runtime: {e}"))?;
    runtime
        .block_on(async move {
            let report = mailer.deliver_all_due().await;
            // The SMTP pool closes its connections from a task of the runtime.
            drop(mailer);
            report
        })
        .map_err(|e| format!("delivering mail: {e}"))
}

pub fn describe_report(r: &DeliveryReport) -> String {
    let mut s = format!("delivered {} of {} mails", r.sent, r.claimed);
    if r.retried > 0 {
        s.push_str(&format!(", {} failed and wait for a retry", r.retried));
    }
    if r.failed > 0 {
        s.push_str(&format!(", {} failed for good", r.failed));
    }
    if r.released > 0 {
        s.push_str(&format!(", {} not tried (queued again)", r.released));
    }
    s
}

fn time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn line(m: &OutboxMail) -> String {
    let mut s = format!(
        "  #{} {} {} to {} (attempts {}, queued {})",
        m.id,
        m.status,
        m.kind,
        m.recipient,
        m.attempts,
        time(m.created_at)
    );
    if m.status == "queued" {
        s.push_str(&format!(", next attempt {}", time(m.next_attempt_at)));
    }
    if m.status == "sending" {
        if let Some(until) = m.locked_until {
            s.push_str(&format!(", claimed by a worker until {}", time(until)));
        }
    }
    if let Some(e) = &m.last_error {
        s.push_str(&format!("\n      last error: {e}"));
    }
    s
}

/// Why `--retry ID` did not requeue a mail.
fn not_retried(conn: &mut DbConnection, id: i64) -> CliResult<String> {
    let mail = outbox::get(conn, id).map_err(|e| e.to_string())?;
    Ok(match mail {
        None => format!("no mail #{id} in the outbox"),
        Some(m) if outbox::is_superseded(&m) => format!(
            "mail #{id} was dropped because its link no longer works ({}); not sent",
            m.last_error.as_deref().unwrap_or_default()
        ),
        Some(m) if m.status == "queued" => format!(
            "mail #{id} is already queued (next attempt {}); only failed mail is retried",
            time(m.next_attempt_at)
        ),
        Some(OutboxMail {
            status,
            locked_until: Some(until),
            ..
        }) if status == "sending" && until > frontdesk_core::time::now() => format!(
            "mail #{id} is held by a worker until {}; after that any worker takes it up again",
            time(until)
        ),
        Some(OutboxMail {
            status,
            locked_until: Some(until),
            ..
        }) if status == "sending" => format!(
            "mail #{id} was held by a worker whose lease ran out at {}; the next delivery round takes it up again",
            time(until)
        ),
        Some(m) => format!(
            "mail #{id} is {}, not failed; only failed mail is retried",
            m.status
        ),
    })
}

fn record_retry(conn: &mut DbConnection, ids: &[i64]) -> Result<(), CoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    audit::record(
        conn,
        &Actor::system(),
        "outbox.retry",
        "outbox",
        None,
        json!({"ids": ids, "by": "cli"}),
    )
}

pub fn run(url: Option<&str>, args: OutboxArgs) -> CliResult<ExitCode> {
    let pool = connect(url)?;
    let mailer = args.send.mailer(&pool)?;
    let mut c = conn(&pool)?;
    let mut errors = 0;

    if args.retry_failed {
        let ids = db::write_transaction(&mut c, |c| {
            let ids = outbox::retry_all_failed(c)?;
            record_retry(c, &ids)?;
            Ok::<_, CoreError>(ids)
        })
        .map_err(|e| e.to_string())?;
        println!("queued again: {} failed mails", ids.len());
    }
    for &id in &args.retry {
        let retried = db::write_transaction(&mut c, |c| {
            let done = outbox::retry_failed(c, id)?;
            if done {
                record_retry(c, &[id])?;
            }
            Ok::<_, CoreError>(done)
        })
        .map_err(|e| e.to_string())?;
        if retried {
            println!("mail #{id} queued again");
        } else {
            eprintln!("error: {}", not_retried(&mut c, id)?);
            errors += 1;
        }
    }

    if let Some(mailer) = mailer {
        let report = deliver(mailer)?;
        println!("{}", describe_report(&report));
    }

    let counts = outbox::counts(&mut c).map_err(|e| e.to_string())?;
    let count = |status: &str| {
        counts
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n)
    };
    println!(
        "outbox: {} queued, {} sending, {} sent, {} failed",
        count("queued"),
        count("sending"),
        count("sent"),
        count("failed")
    );
    let problems = outbox::list_problems(&mut c, args.limit).map_err(|e| e.to_string())?;
    if !problems.is_empty() {
        println!("failed or stuck, newest first (retry with --retry ID or --retry-failed):");
        for m in &problems {
            println!("{}", line(m));
        }
    }
    let retrying = outbox::list_retrying(&mut c, args.limit).map_err(|e| e.to_string())?;
    if !retrying.is_empty() {
        println!("waiting for a retry after a failed attempt:");
        for m in &retrying {
            println!("{}", line(m));
        }
    }
    Ok(if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
