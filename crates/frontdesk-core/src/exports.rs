//! CSV export of users: chosen fields, the users query's filters and search,
//! streamed a batch at a time to any writer, with formula cells neutralised.
//! Organization admins export only their organizations' users.

use crate::profile::ProfileField;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Write;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::audit;
use crate::authz::{can, Action, Actor, Target};
use crate::db::DbConnection;
use crate::error::CoreError;
use crate::schema::{memberships, organizations, tags, user_tags};
use crate::users::query::{ExportRow, UserQuery};

/// Separator of several values in one cell (organizations, roles, tags), the
/// same one the import reads.
pub const LIST_SEPARATOR: char = '|';

/// A column of the export.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExportField {
    /// The user's id.
    Id,
    /// The email address.
    Email,
    /// The first name.
    FirstName,
    /// The last name.
    LastName,
    /// The display name (empty when none).
    DisplayName,
    /// Organization slugs, `|`-separated.
    Organization,
    /// Roles in those organizations, in the same order.
    Role,
    /// Tag names, `|`-separated.
    Tags,
    /// The staff role (empty when none).
    StaffRole,
    /// The account status: `pending`, `active` or `suspended`.
    Status,
    /// Whether the email is verified (`true`/`false`).
    EmailVerified,
    /// Whether the user may sign in with a password (`true`/`false`).
    LocalLoginEnabled,
    /// The reason given for a suspension.
    SuspendedReason,
    /// When the user was created, as `2026-11-25T09:30:00Z` (UTC).
    CreatedAt,
    /// When the user last signed in, as `2026-11-25T09:30:00Z` (UTC);
    /// empty when never.
    LastLoginAt,
    /// Whether the user has a confirmed second factor (never a secret).
    MfaEnabled,
    /// The keys of the licences the user holds, directly or through a group,
    /// in the organizations of the export's scope; `|`-separated, sorted.
    Licences,
    /// The names of the groups the user belongs to, in the organizations of
    /// the export's scope; `|`-separated, sorted.
    Groups,
    /// A host-defined profile field.
    Profile(String),
}

const BUILTIN: &[(&str, ExportField)] = &[
    ("id", ExportField::Id),
    ("email", ExportField::Email),
    ("first_name", ExportField::FirstName),
    ("last_name", ExportField::LastName),
    ("display_name", ExportField::DisplayName),
    ("organization", ExportField::Organization),
    ("role", ExportField::Role),
    ("tags", ExportField::Tags),
    ("staff_role", ExportField::StaffRole),
    ("status", ExportField::Status),
    ("email_verified", ExportField::EmailVerified),
    ("local_login_enabled", ExportField::LocalLoginEnabled),
    ("suspended_reason", ExportField::SuspendedReason),
    ("created_at", ExportField::CreatedAt),
    ("last_login_at", ExportField::LastLoginAt),
    ("mfa_enabled", ExportField::MfaEnabled),
    ("licences", ExportField::Licences),
    ("groups", ExportField::Groups),
];

impl ExportField {
    /// The column name in the header (also what [`ExportField::parse`] reads).
    pub fn name(&self) -> &str {
        match self {
            ExportField::Profile(name) => name,
            other => BUILTIN
                .iter()
                .find(|(_, f)| f == other)
                .map(|(n, _)| *n)
                .unwrap_or("?"),
        }
    }

    /// A field by name: a built-in column or one of the host's profile fields.
    pub fn parse(name: &str, profile_fields: &[ProfileField]) -> Result<ExportField, CoreError> {
        let key = name.trim();
        if let Some((_, f)) = BUILTIN.iter().find(|(n, _)| n.eq_ignore_ascii_case(key)) {
            return Ok(f.clone());
        }
        if let Some(p) = profile_fields
            .iter()
            .find(|p| p.key.eq_ignore_ascii_case(key))
        {
            return Ok(ExportField::Profile(p.key.clone()));
        }
        Err(CoreError::Invalid {
            field: "fields",
            reason: format!(
                "unknown field {key:?}; known: {}",
                all_fields(profile_fields)
                    .iter()
                    .map(|f| f.name().to_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    /// A comma-separated list of field names.
    pub fn parse_list(
        list: &str,
        profile_fields: &[ProfileField],
    ) -> Result<Vec<ExportField>, CoreError> {
        let fields = list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| ExportField::parse(s, profile_fields))
            .collect::<Result<Vec<_>, _>>()?;
        if fields.is_empty() {
            return Err(CoreError::Invalid {
                field: "fields",
                reason: "choose at least one field".into(),
            });
        }
        Ok(fields)
    }
}

/// Every field an export may contain.
pub fn all_fields(profile_fields: &[ProfileField]) -> Vec<ExportField> {
    BUILTIN
        .iter()
        .map(|(_, f)| f.clone())
        .chain(
            profile_fields
                .iter()
                .map(|p| ExportField::Profile(p.key.clone())),
        )
        .collect()
}

/// The columns the import reads back (a file exported with these re-imports
/// into an empty database as the same users).
pub fn import_fields(profile_fields: &[ProfileField]) -> Vec<ExportField> {
    [
        ExportField::Email,
        ExportField::FirstName,
        ExportField::LastName,
        ExportField::DisplayName,
        ExportField::Organization,
        ExportField::Role,
        ExportField::Tags,
        ExportField::StaffRole,
    ]
    .into_iter()
    .chain(
        profile_fields
            .iter()
            .map(|p| ExportField::Profile(p.key.clone())),
    )
    .collect()
}

/// The default choice: the import columns plus status and dates.
pub fn default_fields(profile_fields: &[ProfileField]) -> Vec<ExportField> {
    let mut f = import_fields(profile_fields);
    f.extend([
        ExportField::Status,
        ExportField::CreatedAt,
        ExportField::LastLoginAt,
    ]);
    f
}

fn is_trigger(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r' | '\n' | '\0')
}

/// True when a spreadsheet could read the cell as a formula: it starts with a
/// trigger character, or with quotes followed by one (so that escaping stays
/// reversible: `'=x` is exported as `''=x`).
fn needs_quote(cell: &str) -> bool {
    cell.trim_start_matches('\'').starts_with(is_trigger)
}

/// Neutralises a cell for spreadsheets: a leading `'` before cells that start
/// with `= + - @`, tab, CR, LF or NUL (and before `'`-quoted ones of those).
pub fn neutralize(cell: &str) -> Cow<'_, str> {
    if needs_quote(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The inverse of [`neutralize`], used by the import so an exported file
/// re-imports as the original values.
pub fn unneutralize(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_quote(rest) => rest,
        _ => cell,
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The actor may not export users of this scope.
    #[error("not allowed")]
    Forbidden,
    /// Writing the output failed.
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
    /// A service refused or failed.
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<diesel::result::Error> for ExportError {
    fn from(e: diesel::result::Error) -> Self {
        ExportError::Core(CoreError::Database(e))
    }
}

impl From<csv::Error> for ExportError {
    fn from(e: csv::Error) -> Self {
        match e.into_kind() {
            csv::ErrorKind::Io(io) => ExportError::Io(io),
            other => ExportError::Io(std::io::Error::other(format!("{other:?}"))),
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The columns, in order.
    pub fields: Vec<ExportField>,
    /// Filters, search and sort of the users list (page and limit are ignored).
    pub query: UserQuery,
    /// Users read per query.
    pub batch_size: i64,
}

impl ExportRequest {
    /// An export of `fields` for the users `query` finds, 5,000 users per query.
    pub fn new(fields: Vec<ExportField>, query: UserQuery) -> Self {
        ExportRequest {
            fields,
            query,
            batch_size: 5_000,
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    /// The number of users written (the header not counted).
    pub rows: u64,
}

/// The dated attachment name, e.g. `users-2026-11-25.csv`.
pub fn filename(at: NaiveDateTime) -> String {
    format!("users-{}.csv", at.format("%Y-%m-%d"))
}

/// The organizations whose users `actor` may export, or `None` for every user.
pub fn export_scope(actor: &Actor) -> Result<Option<Vec<i64>>, ExportError> {
    match actor.visible_orgs() {
        None if can(actor, Action::ImportExport, &Target::Site) => Ok(None),
        None => Err(ExportError::Forbidden),
        Some(orgs) => {
            let orgs: Vec<i64> = orgs
                .into_iter()
                .filter(|o| can(actor, Action::ImportExport, &Target::Organization(*o)))
                .collect();
            if orgs.is_empty() {
                Err(ExportError::Forbidden)
            } else {
                Ok(Some(orgs))
            }
        }
    }
}

/// `2026-11-25T17:40:00Z` (UTC), written without a format-string parse per cell.
fn push_timestamp(cell: &mut String, t: Option<NaiveDateTime>) {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write as _;
    if let Some(t) = t {
        let _ = write!(
            cell,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
    }
}

/// Streams the matching users as CSV (header first) to `out`, one batch of
/// the users query at a time, and records an audit event. `progress` gets the
/// number of rows written after each batch.
#[tracing::instrument(level = "debug", name = "export", skip_all, fields(actor = %actor.label()))]
pub fn export<W: Write>(
    conn: &mut DbConnection,
    actor: &Actor,
    req: &ExportRequest,
    out: W,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportSummary, ExportError> {
    let scope = export_scope(actor)?;
    if req.fields.is_empty() {
        return Err(CoreError::Invalid {
            field: "fields",
            reason: "choose at least one field".into(),
        }
        .into());
    }
    let result = write_csv(conn, req, scope.as_deref(), out, progress);
    let (rows, error) = match &result {
        Ok(s) => (s.rows, None),
        Err(e) => (0, Some(e.to_string())),
    };
    let q = &req.query;
    let details = json!({
        "fields": req.fields.iter().map(|f| f.name().to_owned()).collect::<Vec<_>>(),
        "search": q.search, "status": q.status, "staff": q.staff, "organization": q.organization,
        "org_role": q.org_role, "tags_all": q.tags_all, "tags_any": q.tags_any, "tags_none": q.tags_none,
        "created_from": q.created_from, "created_to": q.created_to, "last_login": format!("{:?}", q.last_login),
        "scope": scope, "rows": rows, "error": error,
    });
    let org = scope.as_ref().filter(|s| s.len() == 1).map(|s| s[0]);
    audit::record(conn, actor, "users.export", "users", org, details)?;
    result
}

fn write_csv<W: Write>(
    conn: &mut DbConnection,
    req: &ExportRequest,
    scope: Option<&[i64]>,
    out: W,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportSummary, ExportError> {
    let mut wtr = csv::WriterBuilder::new().from_writer(out);
    wtr.write_record(req.fields.iter().map(|f| f.name()))?;
    let want_orgs = req
        .fields
        .iter()
        .any(|f| matches!(f, ExportField::Organization | ExportField::Role));
    let want_tags = req.fields.contains(&ExportField::Tags);
    let want_mfa = req.fields.contains(&ExportField::MfaEnabled);
    let want_licences = req.fields.contains(&ExportField::Licences);
    let want_groups = req.fields.contains(&ExportField::Groups);
    let want_profile = req
        .fields
        .iter()
        .any(|f| matches!(f, ExportField::Profile(_)));
    let mut slugs: HashMap<i64, String> = HashMap::new();
    let mut tag_names: HashMap<i64, String> = HashMap::new();
    let mut rows = 0u64;
    let mut cell = String::new();
    let batch = req.batch_size.clamp(1, 50_000);
    req.query.for_each_export_batch(
        conn,
        scope,
        batch,
        |conn, users| -> Result<(), ExportError> {
            let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
            let orgs_of = if want_orgs {
                batch_memberships(conn, &ids, scope, &mut slugs)?
            } else {
                HashMap::new()
            };
            let tags_of = if want_tags {
                batch_tags(conn, &ids, &mut tag_names)?
            } else {
                HashMap::new()
            };
            let mfa_on = if want_mfa {
                crate::mfa::enabled_among(conn, &ids)?
            } else {
                Default::default()
            };
            let licences_of = if want_licences {
                batch_licences(conn, &ids, scope)?
            } else {
                HashMap::new()
            };
            let groups_of = if want_groups {
                crate::groups::names_of_users(conn, &ids, scope)?
            } else {
                Default::default()
            };
            for u in users {
                // Profiles are small JSON objects, parsed once per row.
                let profile = if want_profile {
                    serde_json::from_str::<Map<String, Value>>(&u.profile).ok()
                } else {
                    None
                };
                for f in &req.fields {
                    cell.clear();
                    if *f == ExportField::Groups {
                        if let Some(names) = groups_of.get(&u.id) {
                            for (i, n) in names.iter().enumerate() {
                                if i > 0 {
                                    cell.push(LIST_SEPARATOR);
                                }
                                cell.push_str(n);
                            }
                        }
                    }
                    if *f == ExportField::Licences {
                        if let Some(keys) = licences_of.get(&u.id) {
                            for (i, k) in keys.iter().enumerate() {
                                if i > 0 {
                                    cell.push(LIST_SEPARATOR);
                                }
                                cell.push_str(k);
                            }
                        }
                    }
                    if *f == ExportField::MfaEnabled {
                        cell.push_str(if mfa_on.contains(&u.id) {
                            "true"
                        } else {
                            "false"
                        });
                    }
                    fill_cell(
                        &mut cell,
                        f,
                        u,
                        orgs_of.get(&u.id),
                        tags_of.get(&u.id),
                        profile.as_ref(),
                        &slugs,
                        &tag_names,
                    );
                    wtr.write_field(neutralize(&cell).as_bytes())?;
                }
                wtr.write_record(None::<&[u8]>)?;
            }
            rows += users.len() as u64;
            wtr.flush()?;
            progress(rows);
            Ok(())
        },
    )?;
    wtr.flush()?;
    Ok(ExportSummary { rows })
}

#[allow(clippy::too_many_arguments)]
fn fill_cell(
    cell: &mut String,
    f: &ExportField,
    u: &ExportRow,
    orgs: Option<&Vec<(i64, String)>>,
    tags: Option<&Vec<i64>>,
    profile: Option<&Map<String, Value>>,
    slugs: &HashMap<i64, String>,
    tag_names: &HashMap<i64, String>,
) {
    use std::fmt::Write as _;
    let join = |cell: &mut String, items: &mut dyn Iterator<Item = &str>| {
        for (i, s) in items.enumerate() {
            if i > 0 {
                cell.push(LIST_SEPARATOR);
            }
            cell.push_str(s);
        }
    };
    match f {
        ExportField::Id => {
            let _ = write!(cell, "{}", u.id);
        }
        ExportField::Email => cell.push_str(&u.email),
        ExportField::FirstName => cell.push_str(&u.first_name),
        ExportField::LastName => cell.push_str(&u.last_name),
        ExportField::DisplayName => cell.push_str(u.display_name.as_deref().unwrap_or("")),
        ExportField::Organization => {
            if let Some(o) = orgs {
                join(
                    cell,
                    &mut o
                        .iter()
                        .map(|(org, _)| slugs.get(org).map(String::as_str).unwrap_or("")),
                );
            }
        }
        ExportField::Role => {
            if let Some(o) = orgs {
                join(cell, &mut o.iter().map(|(_, role)| role.as_str()));
            }
        }
        ExportField::Tags => {
            if let Some(t) = tags {
                join(
                    cell,
                    &mut t
                        .iter()
                        .map(|id| tag_names.get(id).map(String::as_str).unwrap_or("")),
                );
            }
        }
        ExportField::StaffRole => cell.push_str(u.staff_role.as_deref().unwrap_or("")),
        ExportField::Status => cell.push_str(u.account_status().as_str()),
        ExportField::EmailVerified => {
            cell.push_str(if u.email_verified { "true" } else { "false" })
        }
        // Filled by the caller, from the batch's factors and licences.
        ExportField::MfaEnabled | ExportField::Licences | ExportField::Groups => {}
        ExportField::LocalLoginEnabled => cell.push_str(if u.local_login_enabled {
            "true"
        } else {
            "false"
        }),
        ExportField::SuspendedReason => cell.push_str(u.suspended_reason.as_deref().unwrap_or("")),
        ExportField::CreatedAt => push_timestamp(cell, Some(u.created_at)),
        ExportField::LastLoginAt => push_timestamp(cell, u.last_login_at),
        ExportField::Profile(name) => match profile.and_then(|p| p.get(name)) {
            Some(Value::String(s)) => cell.push_str(s),
            Some(Value::Null) | None => {}
            Some(other) => cell.push_str(&other.to_string()),
        },
    }
}

/// The licence keys each user of the batch holds in the organizations of
/// `scope` (all when `None`), sorted and without repeats.
fn batch_licences(
    conn: &mut DbConnection,
    ids: &[i64],
    scope: Option<&[i64]>,
) -> Result<HashMap<i64, Vec<String>>, ExportError> {
    let held = crate::licences::effective_of_users(conn, None, ids)?;
    Ok(held
        .into_iter()
        .map(|(user, by_org)| {
            let keys: std::collections::BTreeSet<String> = by_org
                .into_iter()
                .filter(|(org, _)| scope.is_none_or(|s| s.contains(org)))
                .flat_map(|(_, l)| l.into_iter().map(|e| e.key))
                .collect();
            (user, keys.into_iter().collect())
        })
        .collect())
}

/// When a batch's ids are nearly contiguous (sorted by creation, as exports
/// usually are), one range scan of the `user_id`-first primary key beats a
/// probe per id; rows of users outside the batch are dropped afterwards.
fn dense_range(ids: &[i64]) -> Option<(i64, i64)> {
    let lo = *ids.iter().min()?;
    let hi = *ids.iter().max()?;
    let span = hi.checked_sub(lo)?.checked_add(1)?;
    (span <= 2 * ids.len() as i64).then_some((lo, hi))
}

/// Memberships of a batch of users (only in `scope` when given), ordered by
/// organization slug, with the slugs cached across batches.
fn batch_memberships(
    conn: &mut DbConnection,
    ids: &[i64],
    scope: Option<&[i64]>,
    slugs: &mut HashMap<i64, String>,
) -> Result<HashMap<i64, Vec<(i64, String)>>, ExportError> {
    let mut q = memberships::table
        .select((
            memberships::user_id,
            memberships::organization_id,
            memberships::role,
        ))
        .into_boxed();
    q = match dense_range(ids) {
        Some((lo, hi)) => q.filter(memberships::user_id.between(lo, hi)),
        None => q.filter(memberships::user_id.eq_any(ids)),
    };
    if let Some(scope) = scope {
        q = q.filter(memberships::organization_id.eq_any(scope));
    }
    let wanted: HashSet<i64> = ids.iter().copied().collect();
    let rows: Vec<(i64, i64, String)> = q
        .load::<(i64, i64, String)>(conn)?
        .into_iter()
        .filter(|r| wanted.contains(&r.0))
        .collect();
    let missing: Vec<i64> = rows
        .iter()
        .map(|r| r.1)
        .filter(|o| !slugs.contains_key(o))
        .collect();
    if !missing.is_empty() {
        let found: Vec<(i64, String)> = organizations::table
            .filter(organizations::id.eq_any(&missing))
            .select((organizations::id, organizations::slug))
            .load(conn)?;
        slugs.extend(found);
    }
    let mut out: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
    for (user, org, role) in rows {
        out.entry(user).or_default().push((org, role));
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| slugs.get(&a.0).cmp(&slugs.get(&b.0)));
    }
    Ok(out)
}

/// Tag ids of a batch of users, ordered by name, with the names cached.
fn batch_tags(
    conn: &mut DbConnection,
    ids: &[i64],
    names: &mut HashMap<i64, String>,
) -> Result<HashMap<i64, Vec<i64>>, ExportError> {
    let q = user_tags::table
        .select((user_tags::user_id, user_tags::tag_id))
        .into_boxed();
    let q = match dense_range(ids) {
        Some((lo, hi)) => q.filter(user_tags::user_id.between(lo, hi)),
        None => q.filter(user_tags::user_id.eq_any(ids)),
    };
    let wanted: HashSet<i64> = ids.iter().copied().collect();
    let rows: Vec<(i64, i64)> = q
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .filter(|r| wanted.contains(&r.0))
        .collect();
    let missing: Vec<i64> = rows
        .iter()
        .map(|r| r.1)
        .filter(|t| !names.contains_key(t))
        .collect();
    if !missing.is_empty() {
        let found: Vec<(i64, String)> = tags::table
            .filter(tags::id.eq_any(&missing))
            .select((tags::id, tags::name))
            .load(conn)?;
        names.extend(found);
    }
    let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
    for (user, tag) in rows {
        out.entry(user).or_default().push(tag);
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| names.get(a).cmp(&names.get(b)));
    }
    Ok(out)
}
