//! A `tracing` subscriber for the test binary that keeps every line
//! frontdesk logs (at any level, from any thread, with the spans it was in:
//! `request{request_id=… method=…}:core{call=…}: …`), so tests can search
//! them — for a secret that must never be logged, or a request's id.
//! `FRONTDESK_TEST_LOG=1` also prints them.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

struct Captured {
    lines: Mutex<Vec<String>>,
    echo: bool,
}

/// One formatted event: the subscriber writes each event whole, then drops
/// the writer, which files it.
struct Line(&'static Captured, Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.1);
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        if self.0.echo {
            eprintln!("{text}");
        }
        if let Ok(mut lines) = self.0.lines.lock() {
            lines.push(text.to_owned());
        }
    }
}

fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<&'static Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let c: &'static Captured = Box::leak(Box::new(Captured {
            lines: Mutex::new(Vec::new()),
            echo: std::env::var("FRONTDESK_TEST_LOG").is_ok_and(|v| v == "1"),
        }));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            // A line when each span closes, with its fields: what a span
            // records (a route, a status) is searched too.
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_writer(move || Line(c, Vec::new()))
            .finish();
        // Fails only when another global subscriber was set first.
        let _ = tracing::subscriber::set_global_default(subscriber);
        c
    })
}

/// Starts capturing (once per test binary).
pub fn install() {
    captured();
}

/// Every line logged so far, by any test in the binary.
pub fn lines() -> Vec<String> {
    captured()
        .lines
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default()
}
