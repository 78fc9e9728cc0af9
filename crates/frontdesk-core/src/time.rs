//! Timestamps are UTC `NaiveDateTime`s cut to microseconds, the precision both
//! backends keep, so a value reads back equal to what was written.

use chrono::{NaiveDateTime, Timelike, Utc};

/// The current UTC time, cut to microseconds.
pub fn now() -> NaiveDateTime {
    truncate(Utc::now().naive_utc())
}

pub(crate) fn truncate(t: NaiveDateTime) -> NaiveDateTime {
    let micros = t.nanosecond() / 1_000 * 1_000;
    t.with_nanosecond(micros).unwrap_or(t)
}
