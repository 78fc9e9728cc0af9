//! The streaming pass over the rows: each row checked, valid ones written
//! in batch transactions, every outcome reported.

mod check;
mod write;

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::io::Read;

use diesel::prelude::*;
use serde_json::{Map, Value};

use crate::authz::{can, Action, Actor, OrgRole, StaffRole, Target};
use crate::db::DbConnection;
use crate::error::CoreError;
use crate::organizations::Organization;
use crate::schema::{audit_events, memberships, user_tags, users};

use super::Column;
use super::*;

/// A valid row waiting for its batch.
pub(super) struct Pending {
    pub(super) row: u64,
    pub(super) email: String,
    pub(super) first_name: String,
    pub(super) last_name: String,
    pub(super) display_name: Option<String>,
    pub(super) staff_role: Option<StaffRole>,
    pub(super) profile: Map<String, Value>,
    pub(super) memberships: Vec<(i64, OrgRole)>,
    pub(super) tags: Vec<String>,
    /// Groups to join: (organization, group id, group name).
    pub(super) groups: Vec<(i64, i64, String)>,
}

/// A rejected row: code and reason.
pub(super) type Problem = (&'static str, String);

#[derive(Insertable)]
#[diesel(table_name = users, treat_none_as_default_value = false)]
pub(super) struct UserRow<'a> {
    pub(super) email: &'a str,
    pub(super) first_name: &'a str,
    pub(super) last_name: &'a str,
    pub(super) display_name: Option<&'a str>,
    pub(super) staff_role: Option<&'a str>,
    pub(super) profile: String,
    pub(super) search_text: String,
    pub(super) created_at: chrono::NaiveDateTime,
    pub(super) updated_at: chrono::NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = memberships)]
pub(super) struct MembershipRow {
    pub(super) user_id: i64,
    pub(super) organization_id: i64,
    pub(super) role: &'static str,
    pub(super) created_at: chrono::NaiveDateTime,
}

/// The `user.create` event of one user an import created.
#[derive(Insertable)]
#[diesel(table_name = audit_events)]
pub(super) struct AuditRow<'a> {
    pub(super) actor: &'a str,
    pub(super) action: &'static str,
    pub(super) target: String,
    pub(super) organization_id: Option<i64>,
    pub(super) details: String,
    pub(super) ip: Option<&'a str>,
    pub(super) created_at: chrono::NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = user_tags)]
pub(super) struct UserTagRow {
    pub(super) user_id: i64,
    pub(super) tag_id: i64,
    pub(super) created_at: chrono::NaiveDateTime,
}

/// One pass over the rows: validating only, or validating and writing.
pub(super) struct Pass<'a> {
    pub(super) conn: &'a mut DbConnection,
    pub(super) actor: &'a Actor,
    pub(super) config: &'a ImportConfig,
    pub(super) options: &'a ImportOptions,
    pub(super) header: &'a Header,
    pub(super) default_org: Option<Organization>,
    pub(super) write: bool,
    pub(super) orgs: HashMap<String, Option<Organization>>,
    pub(super) tags: HashMap<String, i64>,
    /// Groups looked up by (organization, name): their id, or none.
    pub(super) groups: HashMap<(i64, String), Option<i64>>,
    pub(super) new_tags: HashSet<String>,
    pub(super) may_create_tags: bool,
    /// Normalized emails seen so far (as 128-bit hashes, to keep memory flat) → first row.
    pub(super) seen: HashMap<[u64; 2], u32>,
    pub(super) hashers: (
        std::collections::hash_map::RandomState,
        std::collections::hash_map::RandomState,
    ),
    pub(super) batch: Vec<Pending>,
    pub(super) report: ImportReport,
    pub(super) listed_created: usize,
    /// A database failure while checking a row: it stops the import rather
    /// than being reported as the row's fault.
    pub(super) failure: Option<CoreError>,
    /// Data rows up to the end of the last committed batch.
    pub(super) committed_rows: u64,
}

impl<'a> Pass<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        conn: &'a mut DbConnection,
        actor: &'a Actor,
        config: &'a ImportConfig,
        options: &'a ImportOptions,
        header: &'a Header,
        default_org: Option<Organization>,
        write: bool,
        total_rows: u64,
    ) -> Self {
        Pass {
            conn,
            actor,
            config,
            options,
            header,
            default_org,
            write,
            orgs: HashMap::new(),
            tags: HashMap::new(),
            groups: HashMap::new(),
            new_tags: HashSet::new(),
            may_create_tags: can(actor, Action::ManageSite, &Target::Site),
            // Sized once from the scan's row count: no doubling peak on large files.
            seen: HashMap::with_capacity(total_rows.min(config.max_rows) as usize),
            hashers: Default::default(),
            batch: Vec::new(),
            report: ImportReport::new(options.mode, total_rows),
            listed_created: 0,
            failure: None,
            committed_rows: 0,
        }
    }

    /// Runs the pass; a failure after some batches were committed says how
    /// far the import got.
    pub(super) fn run<R: Read>(
        &mut self,
        source: &mut R,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<(), ImportError> {
        self.run_rows(source, progress).map_err(|e| {
            if self.write && self.committed_rows > 0 {
                ImportError::Stopped {
                    committed_rows: self.committed_rows,
                    created: self.report.created,
                    error: Box::new(e),
                }
            } else {
                e
            }
        })
    }

    pub(super) fn run_rows<R: Read>(
        &mut self,
        source: &mut R,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<(), ImportError> {
        let mut rdr = reader(source);
        let mut rec = csv::ByteRecord::new();
        let mut row = 1u64;
        // The header was checked by the scan.
        if !rdr
            .read_byte_record(&mut rec)
            .map_err(|e| csv_error(row, e))?
        {
            return Err(ImportError::Empty);
        }
        let width = self.header.columns.len();
        loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(csv_error(row + 1, e)),
            }
            row += 1;
            let mut cells: Vec<&str> = Vec::with_capacity(width);
            let mut utf8_ok = true;
            for f in rec.iter() {
                match std::str::from_utf8(f) {
                    Ok(s) => cells.push(s),
                    Err(_) => utf8_ok = false,
                }
            }
            let email_cell = self
                .cell(&cells, &Column::Email)
                .unwrap_or("")
                .trim()
                .to_owned();
            let checked = if !utf8_ok {
                // The file changed since the scan.
                Err(("encoding", "the text is not UTF-8".to_owned()))
            } else {
                self.check_row(row, &cells)
            };
            if let Some(e) = self.failure.take() {
                return Err(e.into());
            }
            match checked {
                Ok(p) => self.batch.push(p),
                Err((code, reason)) => self.note(row, email_cell, Outcome::Rejected, code, reason),
            }
            self.report.rows_done += 1;
            if self.batch.len() >= batch_rows(self.config, self.report.total_rows) {
                self.flush()?;
                progress(&self.progress());
            }
        }
        self.flush()?;
        progress(&self.progress());
        self.report
            .rows
            .sort_by_key(|r| (r.outcome == Outcome::Created, r.row));
        self.report.tags_created = {
            let mut t: Vec<String> = self.new_tags.iter().cloned().collect();
            t.sort();
            t
        };
        self.report.applied = self.write;
        Ok(())
    }

    pub(super) fn progress(&self) -> Progress {
        Progress {
            total_rows: self.report.total_rows,
            rows_done: self.report.rows_done,
            created: self.report.created,
            skipped: self.report.skipped,
            rejected: self.report.rejected,
            validating: false,
        }
    }

    pub(super) fn cell<'c>(&self, cells: &[&'c str], col: &Column) -> Option<&'c str> {
        let i = self.header.columns.iter().position(|c| c == col)?;
        cells.get(i).copied()
    }

    pub(super) fn note(
        &mut self,
        row: u64,
        email: String,
        outcome: Outcome,
        code: &'static str,
        reason: String,
    ) {
        match outcome {
            Outcome::Created => self.report.created += 1,
            Outcome::Updated => self.report.updated += 1,
            Outcome::Skipped => self.report.skipped += 1,
            Outcome::Rejected => self.report.rejected += 1,
        }
        if outcome == Outcome::Created {
            if self.listed_created >= self.options.list_created {
                return;
            }
            self.listed_created += 1;
        } else if self.report.rows.len() - self.listed_created >= self.config.max_listed_rows {
            self.report.rows_not_listed += 1;
            return;
        }
        let email: String = email.chars().take(MAX_NAME * 3).collect();
        self.report.rows.push(RowResult {
            row,
            email,
            outcome,
            code,
            reason,
        });
    }

    pub(super) fn fatal(&mut self, e: CoreError) -> Problem {
        let p = ("database", e.to_string());
        self.failure = Some(e);
        p
    }

    pub(super) fn email_key(&self, email: &str) -> [u64; 2] {
        [
            self.hashers.0.hash_one(email),
            self.hashers.1.hash_one(email),
        ]
    }
}
