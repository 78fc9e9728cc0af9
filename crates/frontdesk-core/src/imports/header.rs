//! The header row: which column is which, unknown and repeated columns.

use crate::authz::Actor;

use super::Column;
use super::*;

/// Column positions, from the header.
#[derive(Debug)]
pub(super) struct Header {
    pub(super) columns: Vec<Column>,
    /// The names of the columns left out (`ignore_unknown_columns`).
    pub(super) ignored: Vec<String>,
}

pub(super) fn normalize_column(name: &str) -> String {
    name.trim_start_matches('\u{feff}')
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

impl Header {
    pub(super) fn parse(
        rec: &csv::ByteRecord,
        config: &ImportConfig,
        actor: &Actor,
        ignore_unknown_columns: bool,
    ) -> Result<Header, ImportError> {
        let names: Vec<String> = rec
            .iter()
            .map(|f| normalize_column(&String::from_utf8_lossy(f)))
            .collect();
        if names.len() == 1 {
            if let Some(found) = [';', '\t', '|'].into_iter().find(|c| names[0].contains(*c)) {
                return Err(ImportError::WrongDelimiter { row: 1, found });
            }
        }
        let staff_ok = staff_column_allowed(config, actor);
        let mut columns = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for name in &names {
            let col = match name.as_str() {
                "email" => Column::Email,
                "first_name" => Column::FirstName,
                "last_name" => Column::LastName,
                "display_name" => Column::DisplayName,
                "organization" => Column::Organization,
                "role" => Column::Role,
                "groups" => Column::Groups,
                "tags" if config.tags => Column::Tags,
                "staff_role" if staff_ok => Column::StaffRole,
                "" => Column::Unnamed(columns.len() + 1),
                other => match config
                    .profile_fields
                    .iter()
                    .find(|p| normalize_column(&p.key) == other)
                {
                    Some(p) => Column::Profile(p.key.clone()),
                    None => {
                        unknown.push(name.clone());
                        Column::Ignored(columns.len() + 1)
                    }
                },
            };
            if columns.contains(&col) {
                return Err(ImportError::DuplicateColumn(name.clone()));
            }
            columns.push(col);
        }
        let missing: Vec<String> = REQUIRED
            .iter()
            .zip([Column::Email, Column::FirstName, Column::LastName])
            .filter(|(_, c)| !columns.contains(c))
            .map(|(n, _)| n.to_string())
            .collect();
        if !missing.is_empty() {
            if names.len() == 1 {
                if let Some(found) = [';', '\t'].into_iter().find(|c| names[0].contains(*c)) {
                    return Err(ImportError::WrongDelimiter { row: 1, found });
                }
            }
            return Err(ImportError::MissingColumns(missing));
        }
        if !unknown.is_empty() && !ignore_unknown_columns {
            let mut known: Vec<String> = template_columns(config, actor);
            known.retain(|k| !unknown.contains(k));
            return Err(ImportError::UnknownColumns {
                columns: unknown,
                known: known.join(", "),
            });
        }
        Ok(Header {
            columns,
            ignored: unknown,
        })
    }

    /// The report's warnings about the header.
    pub(super) fn warnings(&self) -> Vec<String> {
        if self.ignored.is_empty() {
            return Vec::new();
        }
        let what = if self.ignored.len() == 1 {
            "unknown column"
        } else {
            "unknown columns"
        };
        vec![format!(
            "row 1 (header): {what} ignored, their cells were not imported: {}",
            self.ignored.join(", ")
        )]
    }
}
