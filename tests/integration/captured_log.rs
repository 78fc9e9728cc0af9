//! A logger for the test binary that keeps every line frontdesk logs (at
//! any level, from any thread), so tests can search them — for a secret that
//! must never be logged, say. `FRONTDESK_TEST_LOG=1` also prints them.

use std::sync::{Mutex, OnceLock};

struct Captured {
    lines: Mutex<Vec<String>>,
    echo: bool,
}

impl log::Log for Captured {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        if self.echo {
            eprintln!("{line}");
        }
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line);
        }
    }

    fn flush(&self) {}
}

fn logger() -> &'static Captured {
    static LOGGER: OnceLock<&'static Captured> = OnceLock::new();
    LOGGER.get_or_init(|| {
        let l: &'static Captured = Box::leak(Box::new(Captured {
            lines: Mutex::new(Vec::new()),
            echo: std::env::var("FRONTDESK_TEST_LOG").is_ok_and(|v| v == "1"),
        }));
        if log::set_logger(l).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
        l
    })
}

/// Starts capturing (once per test binary).
pub fn install() {
    logger();
}

/// Every line logged so far, by any test in the binary.
pub fn lines() -> Vec<String> {
    logger().lines.lock().map(|l| l.clone()).unwrap_or_default()
}
