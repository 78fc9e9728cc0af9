//! What signed-in users do in the host app: the `activity_events` table, one
//! user's timeline read newest first with keyset paging, the retention purge,
//! and the [`Recorder`] that queues events in memory and writes them in
//! batches from one background thread.

mod recorder;

pub use recorder::{ActivityStats, Recorder};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{Map, Value};

use crate::db::DbConnection;
use crate::error::{CoreError, CoreResult};
use crate::schema::{activity_events, users};

/// The kind of the events the activity middleware records.
pub const PAGE_VIEW: &str = "page_view";
/// Longest kind or service slug accepted, in bytes.
pub const MAX_KIND: usize = 64;
/// Longest route pattern recorded, in bytes; a page view on a longer one is
/// not recorded, and a recorded path is cut to this many characters.
pub const MAX_ROUTE: usize = 512;
/// Largest `details` accepted, as JSON text; larger ones are dropped.
pub const MAX_DETAILS: usize = 4096;
/// `users.last_active_at` is moved forward by at least this much at a time.
pub const LAST_ACTIVE_STEP: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// Largest page of a timeline.
pub const MAX_PAGE: i64 = 200;

/// What the host turns on with the builder's `.activity(…)`.
#[derive(Debug, Clone)]
pub struct ActivityConfig {
    /// Events waiting for the writer at most; more are dropped and counted.
    pub queue_capacity: usize,
    /// Rows written per transaction at most.
    pub batch_size: usize,
    /// Page views of one user and route within this window are recorded once
    /// (default one minute; `None` records every request).
    pub page_view_dedup: Option<std::time::Duration>,
    /// Events older than this are deleted by the writer (default 90 days;
    /// `None` keeps them).
    pub retention: Option<chrono::Duration>,
    /// Rows deleted per retention statement, so a large purge never holds
    /// the table for long.
    pub retention_batch: usize,
    /// How often the writer looks for rows past the retention.
    pub retention_interval: std::time::Duration,
    /// Store the client IP with each event (default false).
    pub record_ip: bool,
    /// Store the raw path and query of a page view in its details (default
    /// false: only the route pattern, which holds no ids or search terms).
    pub record_path: bool,
    /// Route patterns never recorded: an exact pattern (`/health`) or a
    /// prefix ending in `*` (`/static/*`).
    pub excluded_routes: Vec<String>,
}

impl Default for ActivityConfig {
    fn default() -> Self {
        ActivityConfig {
            queue_capacity: 10_000,
            batch_size: 500,
            page_view_dedup: Some(std::time::Duration::from_secs(60)),
            retention: Some(chrono::Duration::days(90)),
            retention_batch: 5_000,
            retention_interval: std::time::Duration::from_secs(600),
            record_ip: false,
            record_path: false,
            excluded_routes: Vec::new(),
        }
    }
}

impl ActivityConfig {
    /// Sets [`queue_capacity`](Self::queue_capacity) (default 10,000 events).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n;
        self
    }
    /// Sets [`batch_size`](Self::batch_size) (default 500 rows).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Sets [`page_view_dedup`](Self::page_view_dedup) (default one minute).
    pub fn page_view_dedup(mut self, window: Option<std::time::Duration>) -> Self {
        self.page_view_dedup = window;
        self
    }
    /// Sets [`retention`](Self::retention) (default 90 days).
    pub fn retention(mut self, keep: Option<chrono::Duration>) -> Self {
        self.retention = keep;
        self
    }
    /// Sets [`retention_batch`](Self::retention_batch) (default 5,000 rows).
    pub fn retention_batch(mut self, n: usize) -> Self {
        self.retention_batch = n;
        self
    }
    /// Sets [`record_ip`](Self::record_ip) (default false).
    pub fn record_ip(mut self, yes: bool) -> Self {
        self.record_ip = yes;
        self
    }
    /// Sets [`record_path`](Self::record_path) (default false).
    pub fn record_path(mut self, yes: bool) -> Self {
        self.record_path = yes;
        self
    }
    /// Adds a route pattern to [`excluded_routes`](Self::excluded_routes).
    pub fn exclude_route(mut self, pattern: impl Into<String>) -> Self {
        self.excluded_routes.push(pattern.into());
        self
    }

    /// Refuses ([`CoreError::Config`]) a zero queue capacity, batch size,
    /// retention batch or retention interval, a dedup window under one second,
    /// and a retention that is not positive.
    pub fn check(&self) -> CoreResult<()> {
        let bad = |reason: &str| Err(CoreError::Config(format!("activity: {reason}")));
        if self.queue_capacity == 0 || self.batch_size == 0 || self.retention_batch == 0 {
            return bad("queue_capacity, batch_size and retention_batch must be positive");
        }
        if self.page_view_dedup.is_some_and(|w| w.as_secs() == 0) {
            return bad("page_view_dedup must be at least one second (or None)");
        }
        if self
            .retention
            .is_some_and(|r| r <= chrono::Duration::zero())
        {
            return bad("retention must be positive (or None to keep every event)");
        }
        if self.retention_interval.is_zero() {
            return bad("retention_interval must be positive");
        }
        Ok(())
    }

    /// Whether page views of this route pattern are left out.
    pub fn excludes(&self, route: &str) -> bool {
        self.excluded_routes
            .iter()
            .any(|p| match p.strip_suffix('*') {
                Some(prefix) => route.starts_with(prefix),
                None => route == p,
            })
    }
}

/// One event on its way to the table.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = activity_events, treat_none_as_default_value = false)]
pub struct NewActivity {
    /// The user the event is about.
    pub user_id: i64,
    /// When it happened (UTC).
    pub at: NaiveDateTime,
    /// What happened: [`PAGE_VIEW`], or a feature's name (see [`check_kind`]).
    pub kind: String,
    /// The service (its slug) the event happened on, if any.
    pub service: Option<String>,
    /// The route pattern of a page view (`/projects/{id}`), not the raw path.
    pub route: Option<String>,
    /// The HTTP method of a page view.
    pub method: Option<String>,
    /// The HTTP status of a page view's answer.
    pub status: Option<i32>,
    /// A JSON object, as text.
    pub details: String,
    /// The client IP address, when the config records it.
    pub ip: Option<String>,
}

impl NewActivity {
    /// A feature event the host records by name (`export.created`).
    pub fn feature(user_id: i64, kind: &str, details: Value) -> CoreResult<Self> {
        check_kind(kind)?;
        Ok(NewActivity {
            user_id,
            at: crate::time::now(),
            kind: kind.to_owned(),
            service: None,
            route: None,
            method: None,
            status: None,
            details: details_text(details)?,
            ip: None,
        })
    }
}

/// A kind is 1 to 64 of `a-z 0-9 . _ -`, so it reads well in a filter.
pub fn check_kind(kind: &str) -> CoreResult<()> {
    let ok = !kind.is_empty()
        && kind.len() <= MAX_KIND
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CoreError::Invalid {
            field: "kind",
            reason: "use 1 to 64 of a-z, 0-9, '.', '_' and '-'".into(),
        })
    }
}

/// Details are a JSON object (null is an empty one) of at most
/// [`MAX_DETAILS`] bytes.
pub fn details_text(details: Value) -> CoreResult<String> {
    let details = match details {
        Value::Null => Value::Object(Map::new()),
        v @ Value::Object(_) => v,
        _ => {
            return Err(CoreError::Invalid {
                field: "details",
                reason: "must be a JSON object".into(),
            })
        }
    };
    let text = details.to_string();
    if text.len() > MAX_DETAILS {
        return Err(CoreError::TooLong {
            field: "details",
            max: MAX_DETAILS,
        });
    }
    Ok(text)
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = activity_events)]
pub struct ActivityEvent {
    /// The event's id.
    pub id: i64,
    /// The user the event is about.
    pub user_id: i64,
    /// When it happened (UTC).
    pub at: NaiveDateTime,
    /// What happened: [`PAGE_VIEW`], or a feature's name.
    pub kind: String,
    /// The service (its slug) the event happened on, if any.
    pub service: Option<String>,
    /// The route pattern of a page view.
    pub route: Option<String>,
    /// The HTTP method of a page view.
    pub method: Option<String>,
    /// The HTTP status of a page view's answer.
    pub status: Option<i32>,
    /// A JSON object, as text; [`ActivityEvent::details_json`] parses it.
    pub details: String,
    /// The client IP address, if it was recorded.
    pub ip: Option<String>,
}

impl ActivityEvent {
    /// The details as JSON (an empty object if the text does not parse).
    pub fn details_json(&self) -> Value {
        serde_json::from_str(&self.details).unwrap_or_else(|_| Value::Object(Map::new()))
    }
}

/// Where the next page of a timeline starts: after this (at, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The time of the last event shown.
    pub at: NaiveDateTime,
    /// The id of the last event shown.
    pub id: i64,
}

impl Cursor {
    /// `<microseconds since 1970>.<id>`: opaque to callers, checked on the way in.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at.and_utc().timestamp_micros(), self.id)
    }

    /// Reads a cursor made by [`Cursor::encode`]; `None` for anything else.
    pub fn decode(s: &str) -> Option<Cursor> {
        let (micros, id) = s.split_once('.')?;
        let micros: i64 = micros.parse().ok()?;
        let id: i64 = id.parse().ok()?;
        let at = chrono::DateTime::from_timestamp_micros(micros)?.naive_utc();
        (id > 0).then_some(Cursor { at, id })
    }
}

/// Which events of a timeline.
#[derive(Debug, Clone, Default)]
pub struct TimelineFilter {
    /// Only events on this service (slug).
    pub service: Option<String>,
    /// Only events of this kind.
    pub kind: Option<String>,
    /// Start after this event (the previous page's cursor); `None` starts with
    /// the newest.
    pub after: Option<Cursor>,
}

/// One page of a user's events, newest first, and the cursor of the next
/// page when there is one.
pub fn timeline(
    conn: &mut DbConnection,
    user_id: i64,
    filter: &TimelineFilter,
    limit: i64,
) -> QueryResult<(Vec<ActivityEvent>, Option<Cursor>)> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut q = activity_events::table
        .filter(activity_events::user_id.eq(user_id))
        .select(ActivityEvent::as_select())
        .into_boxed();
    if let Some(s) = &filter.service {
        q = q.filter(activity_events::service.eq(s.clone()));
    }
    if let Some(k) = &filter.kind {
        q = q.filter(activity_events::kind.eq(k.clone()));
    }
    if let Some(c) = filter.after {
        q = q.filter(
            activity_events::at.lt(c.at).or(activity_events::at
                .eq(c.at)
                .and(activity_events::id.lt(c.id))),
        );
    }
    let mut rows: Vec<ActivityEvent> = q
        .order((activity_events::at.desc(), activity_events::id.desc()))
        .limit(limit + 1)
        .load(conn)?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|e| Cursor { at: e.at, id: e.id })
    } else {
        None
    };
    Ok((rows, next))
}

/// The services and kinds a user's events carry, for the timeline's filters.
pub fn facets(conn: &mut DbConnection, user_id: i64) -> QueryResult<(Vec<String>, Vec<String>)> {
    let services: Vec<Option<String>> = activity_events::table
        .filter(activity_events::user_id.eq(user_id))
        .select(activity_events::service)
        .distinct()
        .load(conn)?;
    let mut services: Vec<String> = services.into_iter().flatten().collect();
    services.sort();
    let mut kinds: Vec<String> = activity_events::table
        .filter(activity_events::user_id.eq(user_id))
        .select(activity_events::kind)
        .distinct()
        .load(conn)?;
    kinds.sort();
    Ok((services, kinds))
}

/// Writes `batch` in one transaction (one multi-row insert per chunk) and
/// moves each user's `last_active_at` forward to their newest event.
pub fn insert_batch(conn: &mut DbConnection, batch: &[NewActivity]) -> QueryResult<usize> {
    if batch.is_empty() {
        return Ok(0);
    }
    let mut latest: Vec<(i64, NaiveDateTime)> = Vec::new();
    for e in batch {
        match latest.iter_mut().find(|(u, _)| *u == e.user_id) {
            Some((_, at)) if *at < e.at => *at = e.at,
            Some(_) => {}
            None => latest.push((e.user_id, e.at)),
        }
    }
    crate::db::write_transaction(conn, |conn| {
        // Users deleted since their event was queued: their rows would break
        // the foreign key and fail the whole batch.
        let ids: Vec<i64> = latest.iter().map(|(u, _)| *u).collect();
        let found: Vec<(i64, Option<NaiveDateTime>)> = users::table
            .filter(users::id.eq_any(&ids))
            .select((users::id, users::last_active_at))
            .load(conn)?;
        let present: Vec<i64> = found.iter().map(|(u, _)| *u).collect();
        let rows: Vec<&NewActivity> = batch
            .iter()
            .filter(|e| present.contains(&e.user_id))
            .collect();
        // 10 columns a row: well below either backend's bind limit.
        for chunk in rows.chunks(1000) {
            let values: Vec<NewActivity> = chunk.iter().map(|e| (*e).clone()).collect();
            // Multi-row inserts go through the concrete connection: the
            // multi-backend connection does not offer them.
            crate::db::on_backend!(conn, |c| diesel::insert_into(activity_events::table)
                .values(&values)
                .execute(c))?;
        }
        // Written when it moves by a minute or more, like the session's own
        // activity write: a user's row is not rewritten for every batch.
        let due = latest.iter().filter(|(u, at)| {
            found
                .iter()
                .find(|(id, _)| id == u)
                .is_some_and(|(_, last)| last.is_none_or(|l| *at - l >= LAST_ACTIVE_STEP))
        });
        for (user_id, at) in due {
            diesel::update(
                users::table.filter(users::id.eq(user_id)).filter(
                    users::last_active_at
                        .is_null()
                        .or(users::last_active_at.lt(at)),
                ),
            )
            .set(users::last_active_at.eq(Some(*at)))
            .execute(conn)?;
        }
        Ok(rows.len())
    })
}

/// Deletes at most `batch` events older than `cutoff` (oldest first);
/// returns how many went. Call again while it returns `batch`.
pub fn purge_before(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
    batch: usize,
) -> QueryResult<usize> {
    let ids: Vec<i64> = activity_events::table
        .filter(activity_events::at.lt(cutoff))
        .order(activity_events::at.asc())
        .select(activity_events::id)
        .limit(batch as i64)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(activity_events::table.filter(activity_events::id.eq_any(&ids))).execute(conn)
}

/// How many events a user has (for the admin page).
pub fn count_for(conn: &mut DbConnection, user_id: i64) -> QueryResult<i64> {
    activity_events::table
        .filter(activity_events::user_id.eq(user_id))
        .count()
        .get_result(conn)
}
