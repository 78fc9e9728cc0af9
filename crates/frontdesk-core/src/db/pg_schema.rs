//! PostgreSQL's side of the migrations: frontdesk's own schema, created when
//! missing, and the one-time move of an installation that still lives in
//! `public` into it.

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::PgConnection;

use super::{PgSchema, PG_MIGRATIONS};
use crate::error::CoreError;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

fn names(c: &mut PgConnection, sql: &str, bind: &str) -> QueryResult<Vec<String>> {
    Ok(diesel::sql_query(sql)
        .bind::<Text, _>(bind)
        .load::<Name>(c)?
        .into_iter()
        .map(|n| n.name)
        .collect())
}

fn table_exists(c: &mut PgConnection, schema: &str, table: &str) -> QueryResult<bool> {
    Ok(!names(
        c,
        "SELECT c.relname::text AS name FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND n.nspname = $1",
        schema,
    )?
    .iter()
    .all(|t| t != table))
}

/// Creates the schema when missing (checked first, so a role without CREATE
/// on the database can use a schema its DBA made) and moves a `public`
/// installation into it. Returns the tables moved.
pub(super) fn prepare_pg_schema(
    c: &mut PgConnection,
    schema: &PgSchema,
) -> Result<Vec<String>, CoreError> {
    let exists = !names(
        c,
        "SELECT nspname::text AS name FROM pg_namespace WHERE nspname = $1",
        schema.as_str(),
    )?
    .is_empty();
    if !exists {
        c.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", schema.ident()))?;
    }
    if schema.as_str() == "public" || table_exists(c, schema.as_str(), MIGRATIONS_TABLE)? {
        return Ok(Vec::new());
    }
    move_from_public(c, schema)
}

const MIGRATIONS_TABLE: &str = "__diesel_schema_migrations";

/// The tables each PostgreSQL migration creates: an installation in `public`
/// (from before frontdesk had a schema of its own, or one run with
/// `postgres_schema("public")`) has exactly the tables of the versions it
/// recorded there, and only those are moved. Every new migration gets a line
/// (with `&[]` when it creates no table); a unit test checks that none is missing.
const LEGACY_TABLES: &[(&str, &[&str])] = &[
    (
        "20261125000001",
        &[
            "organizations",
            "users",
            "memberships",
            "tags",
            "user_tags",
            "invitations",
            "sessions",
            "password_resets",
            "login_attempts",
            "audit_events",
            "outbox",
            "api_keys",
        ],
    ),
    ("20261125000050", &[]),
    ("20261126000100", &["imports", "import_invitations"]),
    ("20261126000200", &[]),
    ("20261204000100", &[]),
    ("20261204000200", &[]),
    ("20261204000400", &[]),
    (
        "20261205000100",
        &["email_verifications", "signup_requests"],
    ),
    (
        "20261205000400",
        &["mfa_factors", "mfa_recovery_codes", "mfa_challenges"],
    ),
    ("20261206000200", &["passkey_ceremonies"]),
    ("20261206000210", &[]),
    ("20261206000300", &["activity_events"]),
    (
        "20261206000310",
        &["services", "user_services", "session_services"],
    ),
    ("20261207000050", &[]),
    (
        "20261207000500",
        &["groups", "group_members", "scim_tokens", "scim_requests"],
    ),
    (
        "20261207000700",
        &["licence_types", "user_licences", "group_licences"],
    ),
    (
        "20261208000100",
        &[
            "identity_providers",
            "identity_provider_domains",
            "linked_identities",
            "sso_states",
            "sso_exemptions",
        ],
    ),
    ("20261209000100", &[]),
    ("20261209000200", &["invitation_groups"]),
    ("20261210000100", &[]),
    ("20261211000100", &[]),
    ("20261212000100", &["set_counts"]),
];

/// The functions a PostgreSQL migration creates (for its triggers), moved
/// with the tables: each was created with the migration's `search_path`
/// (`public` there), which the move sets to the new schema, so that the
/// triggers, which moved with their tables, still find frontdesk's tables and
/// never a host's table of the same name in `public`.
const LEGACY_FUNCTIONS: &[(&str, &[&str])] = &[
    (
        "20261211000100",
        &["copy_user_created_at()", "user_created_at_changed()"],
    ),
    (
        "20261212000100",
        &[
            "count_users_changed()",
            "count_user_tags_changed()",
            "count_truncated()",
        ],
    ),
];

/// Moves an installation made before frontdesk had a schema of its own from
/// `public` into `schema`, in one transaction: its tables (indexes,
/// constraints and the sequences of their `BIGSERIAL` columns go with them;
/// foreign keys follow, they point at tables, not names) and its rows of
/// diesel's migrations table, which are copied into the schema's own
/// migrations table and removed from `public`'s (dropped if that leaves it
/// empty). A host's own tables in `public` are never touched: the evidence for
/// a move is frontdesk's migration versions recorded in
/// `public.__diesel_schema_migrations`, and only the tables those versions
/// created are moved. Does nothing when `public` holds no such record.
pub fn move_from_public(c: &mut PgConnection, schema: &PgSchema) -> Result<Vec<String>, CoreError> {
    if !table_exists(c, "public", MIGRATIONS_TABLE)? {
        return Ok(Vec::new());
    }
    let ours: Vec<String> = MigrationSource::<diesel::pg::Pg>::migrations(&PG_MIGRATIONS)
        .map_err(|e| CoreError::Migration(e.to_string()))?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    let recorded: Vec<String> = names(
        c,
        "SELECT version::text AS name FROM public.__diesel_schema_migrations \
         WHERE version = ANY(string_to_array($1, ',')) ORDER BY version",
        &ours.join(","),
    )?;
    if recorded.is_empty() {
        return Ok(Vec::new());
    }
    let mut tables = Vec::new();
    for version in &recorded {
        let Some((_, made)) = LEGACY_TABLES.iter().find(|(v, _)| v == version) else {
            return Err(CoreError::Migration(format!(
                "public.{MIGRATIONS_TABLE} records frontdesk migration {version}, which \
                 never ran in public; move frontdesk's tables into schema {schema} by hand"
            )));
        };
        tables.extend(made.iter().copied());
    }
    for table in &tables {
        if !table_exists(c, "public", table)? {
            return Err(CoreError::Migration(format!(
                "public.{MIGRATIONS_TABLE} records frontdesk's migrations but public.{table} \
                 is missing; nothing was moved"
            )));
        }
        if table_exists(c, schema.as_str(), table)? {
            return Err(CoreError::Migration(format!(
                "both public.{table} and {schema}.{table} exist; nothing was moved"
            )));
        }
    }
    let functions: Vec<&str> = LEGACY_FUNCTIONS
        .iter()
        .filter(|(v, _)| recorded.iter().any(|r| r == v))
        .flat_map(|(_, f)| f.iter().copied())
        .collect();
    let s = schema.ident();
    c.transaction(|c| {
        for table in &tables {
            c.batch_execute(&format!("ALTER TABLE public.\"{table}\" SET SCHEMA {s}"))?;
        }
        for function in &functions {
            c.batch_execute(&format!(
                "ALTER FUNCTION public.{function} SET SCHEMA {s}; \
                 ALTER FUNCTION {s}.{function} SET search_path TO {s}"
            ))?;
        }
        c.batch_execute(&format!(
            "CREATE TABLE {s}.{MIGRATIONS_TABLE} \
               (LIKE public.{MIGRATIONS_TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"
        ))?;
        let list = recorded
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(", ");
        c.batch_execute(&format!(
            "INSERT INTO {s}.{MIGRATIONS_TABLE} SELECT * FROM public.{MIGRATIONS_TABLE} \
               WHERE version IN ({list}); \
             DELETE FROM public.{MIGRATIONS_TABLE} WHERE version IN ({list})"
        ))?;
        let left: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "(SELECT count(*) FROM public.{MIGRATIONS_TABLE})"
        )))
        .get_result(c)?;
        if left == 0 {
            c.batch_execute(&format!("DROP TABLE public.{MIGRATIONS_TABLE}"))?;
        }
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(tables.into_iter().map(str::to_owned).collect())
}

/// Runs `f` with the schema holding an already installed extension (pg_trgm,
/// usually in `public`) on the `search_path` after frontdesk's own schema, so
/// that a migration finds its operator classes; the path is set back after.
/// Where no extension is installed yet, the migration's `CREATE EXTENSION`
/// puts it in frontdesk's schema (the first on the path, and one frontdesk may
/// create in). Queries need no such name: an index refers to its operator
/// class by id.
pub(super) fn with_extensions_on_path<T>(
    c: &mut PgConnection,
    schema: &PgSchema,
    f: impl FnOnce(&mut PgConnection) -> Result<T, CoreError>,
) -> Result<T, CoreError> {
    let others = names(
        c,
        "SELECT DISTINCT n.nspname::text AS name FROM pg_extension e \
         JOIN pg_namespace n ON n.oid = e.extnamespace \
         WHERE e.extname = 'pg_trgm' AND n.nspname <> $1",
        schema.as_str(),
    )?;
    if others.is_empty() {
        return f(c);
    }
    let path = std::iter::once(schema.ident())
        .chain(
            others
                .iter()
                .map(|n| format!("\"{}\"", n.replace('"', "\"\""))),
        )
        .collect::<Vec<_>>()
        .join(", ");
    c.batch_execute(&format!("SET search_path TO {path}"))?;
    let result = f(c);
    c.batch_execute(&format!("SET search_path TO {}", schema.ident()))?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migration missing from `LEGACY_TABLES` would make the move out of
    /// `public` refuse every installation that recorded it.
    #[test]
    fn every_postgres_migration_says_which_tables_it_creates() {
        let versions: Vec<String> = MigrationSource::<diesel::pg::Pg>::migrations(&PG_MIGRATIONS)
            .expect("embedded migrations")
            .iter()
            .map(|m| m.name().version().to_string())
            .collect();
        let listed: Vec<String> = LEGACY_TABLES.iter().map(|(v, _)| v.to_string()).collect();
        assert_eq!(versions, listed);
    }

    /// A function a migration creates but `LEGACY_FUNCTIONS` does not name
    /// would stay in `public` when an installation is moved, its triggers
    /// looking for tables that are no longer there.
    #[test]
    fn every_function_a_postgres_migration_creates_is_moved() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
        let mut created = Vec::new();
        for entry in std::fs::read_dir(dir).expect("migrations") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let version: String = name
                .split('_')
                .next()
                .expect("version")
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            let sql = std::fs::read_to_string(path.join("up.sql")).expect("up.sql");
            for part in sql.split("CREATE FUNCTION ").skip(1) {
                let f = part.split_whitespace().next().expect("function name");
                created.push((version.clone(), f.to_owned()));
            }
        }
        created.sort();
        let mut listed: Vec<(String, String)> = LEGACY_FUNCTIONS
            .iter()
            .flat_map(|(v, fs)| fs.iter().map(|f| (v.to_string(), f.to_string())))
            .collect();
        listed.sort();
        assert!(!listed.is_empty());
        assert_eq!(created, listed);
    }
}
