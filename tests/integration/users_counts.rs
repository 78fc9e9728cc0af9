//! PostgreSQL's kept counts (`set_counts`: every user, the users of each tag)
//! equal `count(*)` after every kind of change — frontdesk's own writes, an
//! import, bulk changes, cascades from deleted users and tags, the host's own
//! SQL, rolled-back transactions, `TRUNCATE`, folding — in any order (a
//! property test) and under concurrent writers; and the users list's totals
//! are those counts.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use frontdesk_core::imports::{self, ImportConfig, ImportMode, ImportOptions};
use frontdesk_core::schema::{tags as tags_t, user_tags as user_tags_t, users as users_t};
use frontdesk_core::users::bulk::{self, BulkChange};
use frontdesk_core::users::counts::{self, CountedSet};
use frontdesk_core::users::query::UserQuery;
use frontdesk_core::users::{self, NewUser, UserStatus};
use frontdesk_core::{tags, Actor, DbConnection};
use proptest::prelude::*;

use crate::support::TestDb;

/// Each kept count against `count(*)`, for every user and every tag that has
/// existed (a deleted tag's count is 0).
fn assert_counts_exact(c: &mut DbConnection, tag_ids: &[i64], after: &str) {
    let users: i64 = users_t::table.count().get_result(c).expect("users");
    let kept = counts::count(c, CountedSet::Users).expect("count");
    assert_eq!(kept, Some(users), "every user, after {after}");
    for &t in tag_ids {
        let tagged: i64 = user_tags_t::table
            .filter(user_tags_t::tag_id.eq(t))
            .count()
            .get_result(c)
            .expect("tagged");
        let kept = counts::count(c, CountedSet::Tag(t)).expect("count");
        assert_eq!(kept, Some(tagged), "tag {t}, after {after}");
    }
}

#[derive(Debug, Clone)]
enum Change {
    /// `users::create`, then `tags::assign` for the chosen tags.
    Create {
        n: usize,
        tags: Vec<usize>,
    },
    /// An import of `n` rows, each with the chosen tags.
    Import {
        n: usize,
        tags: Vec<usize>,
    },
    /// `users::delete` (memberships and tags go by cascade).
    Delete(usize),
    /// A bulk change of the chosen users.
    BulkTag {
        users: Vec<usize>,
        tag: usize,
        add: bool,
    },
    BulkDelete(Vec<usize>),
    /// `tags::unassign`.
    Unassign {
        user: usize,
        tag: usize,
    },
    /// The host's own SQL: a tag assignment moved to another tag.
    MoveTag {
        from: usize,
        to: usize,
    },
    /// The host's own SQL: a tag deleted (its assignments go by cascade) and
    /// a new one made in its place.
    ReplaceTag(usize),
    /// Users and tags written, then rolled back.
    RolledBack(usize),
    /// A fold of one set's rows.
    Fold(Option<usize>),
    /// `TRUNCATE users CASCADE` (rare).
    Truncate,
}

fn change() -> impl Strategy<Value = Change> {
    let picks = proptest::collection::vec(0usize..64, 0..4);
    prop_oneof![
        8 => (1usize..4, picks.clone()).prop_map(|(n, tags)| Change::Create { n, tags }),
        4 => (1usize..6, picks.clone()).prop_map(|(n, tags)| Change::Import { n, tags }),
        4 => (0usize..64).prop_map(Change::Delete),
        4 => (picks.clone(), 0usize..64, any::<bool>())
            .prop_map(|(users, tag, add)| Change::BulkTag { users, tag, add }),
        2 => picks.prop_map(Change::BulkDelete),
        4 => (0usize..64, 0usize..64).prop_map(|(user, tag)| Change::Unassign { user, tag }),
        2 => (0usize..64, 0usize..64).prop_map(|(from, to)| Change::MoveTag { from, to }),
        2 => (0usize..64).prop_map(Change::ReplaceTag),
        2 => (1usize..4).prop_map(Change::RolledBack),
        2 => proptest::option::of(0usize..64).prop_map(Change::Fold),
        1 => Just(Change::Truncate),
    ]
}

/// The database's users and tags, and the tags that have ever existed.
struct World {
    next_email: Cell<usize>,
    tags_ever: Vec<i64>,
}

impl World {
    fn email(&self) -> String {
        let n = self.next_email.get();
        self.next_email.set(n + 1);
        format!("counted{n}@example.com")
    }

    fn users(c: &mut DbConnection) -> Vec<i64> {
        users_t::table
            .select(users_t::id)
            .order(users_t::id)
            .load(c)
            .expect("users")
    }

    fn tags(c: &mut DbConnection) -> Vec<(i64, String)> {
        tags_t::table
            .select((tags_t::id, tags_t::name))
            .order(tags_t::id)
            .load(c)
            .expect("tags")
    }

    fn new_tag(&mut self, c: &mut DbConnection) {
        let name = format!("tag{}", self.tags_ever.len());
        let t = tags::create(c, &Actor::system(), &name).expect("tag").id;
        self.tags_ever.push(t);
    }

    fn apply(&mut self, c: &mut DbConnection, change: &Change) {
        let sys = Actor::system();
        let users = World::users(c);
        let tags = World::tags(c);
        let user = |i: usize| users.get(i % users.len().max(1)).copied();
        let tag = |i: usize| tags[i % tags.len()].clone();
        match change {
            Change::Create { n, tags: chosen } => {
                for _ in 0..*n {
                    let u = users::create(
                        c,
                        &sys,
                        NewUser {
                            email: self.email(),
                            ..Default::default()
                        },
                    )
                    .expect("create");
                    for &t in chosen {
                        tags::assign(c, &sys, u.id, tag(t).0).expect("assign");
                    }
                }
            }
            Change::Import { n, tags: chosen } => {
                let mut names: Vec<String> = chosen.iter().map(|&t| tag(t).1).collect();
                names.sort();
                names.dedup();
                let mut csv = String::from("email,first_name,last_name,tags\n");
                for _ in 0..*n {
                    csv.push_str(&format!(
                        "{},Imported,Row,{}\n",
                        self.email(),
                        names.join("|")
                    ));
                }
                let report = imports::import_bytes(
                    c,
                    &sys,
                    &ImportConfig::default(),
                    &ImportOptions {
                        mode: ImportMode::Apply,
                        source_name: "counted.csv".into(),
                        ..ImportOptions::default()
                    },
                    csv.as_bytes(),
                    &mut |_| {},
                )
                .expect("import");
                assert_eq!(report.created, *n as u64, "{report:?}");
            }
            Change::Delete(i) => {
                if let Some(u) = user(*i) {
                    users::delete(c, &sys, u).expect("delete");
                }
            }
            Change::BulkTag {
                users: chosen,
                tag: t,
                add,
            } => {
                let mut ids: Vec<i64> = chosen.iter().filter_map(|&i| user(i)).collect();
                ids.sort_unstable();
                ids.dedup();
                let t = tag(*t).0;
                let change = if *add {
                    BulkChange::AddTag(t)
                } else {
                    BulkChange::RemoveTag(t)
                };
                bulk::apply(c, &sys, &ids, &change).expect("bulk tag");
            }
            Change::BulkDelete(chosen) => {
                let mut ids: Vec<i64> = chosen.iter().filter_map(|&i| user(i)).collect();
                ids.sort_unstable();
                ids.dedup();
                bulk::apply(c, &sys, &ids, &BulkChange::Delete).expect("bulk delete");
            }
            Change::Unassign { user: i, tag: t } => {
                if let Some(u) = user(*i) {
                    tags::unassign(c, &sys, u, tag(*t).0).expect("unassign");
                }
            }
            Change::MoveTag { from, to } => {
                let (from, to) = (tag(*from).0, tag(*to).0);
                // Every assignment of `from` whose user lacks `to`.
                c.batch_execute(&format!(
                    "UPDATE user_tags SET tag_id = {to} WHERE tag_id = {from} AND user_id NOT IN \
                     (SELECT user_id FROM user_tags WHERE tag_id = {to})"
                ))
                .expect("move");
            }
            Change::ReplaceTag(t) => {
                c.batch_execute(&format!("DELETE FROM tags WHERE id = {}", tag(*t).0))
                    .expect("delete tag");
                self.new_tag(c);
            }
            Change::RolledBack(n) => {
                let emails: Vec<String> = (0..*n).map(|_| self.email()).collect();
                let t = tag(0).0;
                let result = c.transaction::<(), diesel::result::Error, _>(|c| {
                    for e in &emails {
                        let u = users::create(
                            c,
                            &sys,
                            NewUser {
                                email: e.clone(),
                                ..Default::default()
                            },
                        )
                        .expect("create");
                        tags::assign(c, &sys, u.id, t).expect("assign");
                    }
                    if let Some(u) = users.first() {
                        c.batch_execute(&format!("DELETE FROM users WHERE id = {u}"))?;
                    }
                    Err(diesel::result::Error::RollbackTransaction)
                });
                assert!(result.is_err());
            }
            Change::Fold(set) => {
                let set = match set {
                    None => CountedSet::Users,
                    Some(t) => CountedSet::Tag(tag(*t).0),
                };
                assert!(counts::fold(c, set).expect("fold"));
            }
            Change::Truncate => {
                c.batch_execute("TRUNCATE users CASCADE").expect("truncate");
            }
        }
    }
}

#[test]
fn kept_counts_equal_count_after_every_kind_of_change() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let mut world = World {
        next_email: Cell::new(0),
        tags_ever: Vec::new(),
    };
    {
        let c = &mut *db.conn();
        for _ in 0..3 {
            world.new_tag(c);
        }
        assert_counts_exact(c, &world.tags_ever, "the start");
    }
    // One database for every case: each sequence starts where the last one
    // ended, so a failure is read from the first report (shrinking shortens
    // sequences run on the state the failing one left).
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(24));
    let world = std::cell::RefCell::new(world);
    runner
        .run(&proptest::collection::vec(change(), 1..12), |changes| {
            let mut w = world.borrow_mut();
            let c = &mut *db.conn();
            for (i, change) in changes.iter().enumerate() {
                w.apply(c, change);
                assert_counts_exact(c, &w.tags_ever, &format!("change {i} of {changes:?}"));
            }
            Ok(())
        })
        .expect("counts stay exact");
}

/// A small xorshift generator: each writer's own sequence of choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Whether an error is the database resolving a conflict between the
/// concurrent writers (a deadlock, a tag given to a user another writer has
/// just deleted, or moved onto a tag another writer has just given the same
/// user), which rolls the writer's transaction back.
fn is_conflict(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as Kind, Error};
    matches!(
        e,
        Error::DatabaseError(Kind::ForeignKeyViolation | Kind::UniqueViolation, _)
    ) || e.to_string().contains("deadlock")
}

#[test]
fn kept_counts_stay_exact_under_concurrent_writers_and_folds() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let c = &mut *db.conn();
    let sys = Actor::system();
    let tag_ids: Vec<i64> = (0..3)
        .map(|i| tags::create(c, &sys, &format!("busy{i}")).expect("tag").id)
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..3_u64)
        .map(|w| {
            let pool = db.pool().clone();
            let tag_ids = tag_ids.clone();
            let committed = committed.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w + 1));
                let c = &mut *pool.get().expect("connection");
                for i in 0..60 {
                    let t = tag_ids[rng.below(3) as usize];
                    let step = rng.below(5);
                    let rollback = rng.below(6) == 0;
                    let r = c.transaction::<(), diesel::result::Error, _>(|c| {
                        match step {
                            // New users, some of them tagged, in one statement each.
                            0 | 1 => c.batch_execute(&format!(
                                "INSERT INTO users (email, created_at, updated_at) \
                                 SELECT 'w{w}-{i}-' || g || '@example.com', now(), now() \
                                 FROM generate_series(1, {n}) g; \
                                 INSERT INTO user_tags (user_id, tag_id, created_at) \
                                 SELECT id, {t}, now() FROM users \
                                 WHERE email LIKE 'w{w}-{i}-%' AND id % 2 = 0",
                                n = 1 + rng.below(3)
                            ))?,
                            // Users deleted (their tags by cascade).
                            2 => c.batch_execute(
                                "DELETE FROM users WHERE id IN \
                                 (SELECT id FROM users ORDER BY id DESC LIMIT 2)",
                            )?,
                            // A tag given to a few users, another taken away.
                            3 => c.batch_execute(&format!(
                                "INSERT INTO user_tags (user_id, tag_id, created_at) \
                                 SELECT id, {t}, now() FROM users ORDER BY id LIMIT 5 \
                                 ON CONFLICT DO NOTHING; \
                                 DELETE FROM user_tags WHERE tag_id = {t} AND user_id IN \
                                 (SELECT user_id FROM user_tags WHERE tag_id = {t} \
                                  ORDER BY user_id DESC LIMIT 1)"
                            ))?,
                            _ => c.batch_execute(&format!(
                                "UPDATE user_tags SET tag_id = {t} WHERE user_id IN \
                                 (SELECT user_id FROM user_tags WHERE tag_id <> {t} \
                                  ORDER BY user_id LIMIT 1) \
                                 AND NOT EXISTS (SELECT 1 FROM user_tags o \
                                  WHERE o.user_id = user_tags.user_id AND o.tag_id = {t})"
                            ))?,
                        }
                        if rollback {
                            return Err(diesel::result::Error::RollbackTransaction);
                        }
                        Ok(())
                    });
                    match r {
                        Ok(()) => {
                            committed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(diesel::result::Error::RollbackTransaction) => {}
                        Err(e) => assert!(is_conflict(&e), "writer {w}: {e}"),
                    }
                }
            })
        })
        .collect();
    // A reader folding every set while the writers run.
    let folder = {
        let pool = db.pool().clone();
        let done = done.clone();
        let tag_ids = tag_ids.clone();
        std::thread::spawn(move || {
            let c = &mut *pool.get().expect("connection");
            let mut folds = 0;
            while !done.load(Ordering::Relaxed) {
                for set in std::iter::once(CountedSet::Users)
                    .chain(tag_ids.iter().map(|&t| CountedSet::Tag(t)))
                {
                    counts::count(c, set).expect("count");
                    if counts::fold(c, set).expect("fold") {
                        folds += 1;
                    }
                }
            }
            folds
        })
    };
    for w in writers {
        w.join().expect("writer");
    }
    done.store(true, Ordering::Relaxed);
    let folds = folder.join().expect("folder");
    assert!(folds > 0, "the reader folded while writers wrote");
    assert!(
        committed.load(Ordering::Relaxed) > 60,
        "most writers' transactions committed"
    );
    assert_counts_exact(c, &tag_ids, "the concurrent writers");
    // Folded, each set is one row (none for an empty set).
    for set in std::iter::once(CountedSet::Users).chain(tag_ids.iter().map(|&t| CountedSet::Tag(t)))
    {
        counts::fold(c, set).expect("fold");
    }
    let rows: Vec<(String, i64, i64)> = diesel::sql_query(
        "SELECT counted AS name, key, count(*) AS n FROM set_counts GROUP BY 1, 2",
    )
    .load::<SetRows>(c)
    .expect("rows")
    .into_iter()
    .map(|r| (r.name, r.key, r.n))
    .collect();
    assert!(rows.iter().all(|r| r.2 == 1), "{rows:?}");
    assert_counts_exact(c, &tag_ids, "the last folds");
}

#[derive(QueryableByName)]
struct SetRows {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    key: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The users list's totals that PostgreSQL takes from the kept counts (no
/// filter, status = active, one tag, tags none of one tag) are exact, equal to
/// the count over the tables, and come from `set_counts` (a row added there
/// by hand shows in them). On SQLite the same queries count the tables.
#[test]
fn the_users_list_totals_are_the_kept_counts() {
    for db in [Some(TestDb::sqlite()), TestDb::postgres()]
        .into_iter()
        .flatten()
    {
        let c = &mut *db.conn();
        let sys = Actor::system();
        let vip = tags::create(c, &sys, "vip").expect("tag").id;
        for i in 0..12 {
            let u = users::create(
                c,
                &sys,
                NewUser {
                    email: format!("listed{i}@example.com"),
                    ..Default::default()
                },
            )
            .expect("user");
            if i % 3 == 0 {
                tags::assign(c, &sys, u.id, vip).expect("tag");
            }
            if i % 4 == 0 {
                users::suspend(c, &sys, u.id, "checked").expect("suspend");
            }
            if i % 5 == 0 {
                users::activate(c, u.id).expect("activate");
            }
        }
        let queries = [
            UserQuery::default(),
            UserQuery {
                status: Some(UserStatus::Active),
                ..Default::default()
            },
            UserQuery {
                tags_any: vec![vip],
                ..Default::default()
            },
            UserQuery {
                tags_none: vec![vip],
                ..Default::default()
            },
        ];
        let expected = |c: &mut DbConnection, q: &UserQuery| -> i64 {
            // The same filter through a path no count shortcut takes: the
            // rows themselves, a page of all of them.
            UserQuery {
                limit: 100,
                ..q.clone()
            }
            .run_scoped(c, None)
            .expect("rows")
            .items
            .len() as i64
        };
        let totals = |c: &mut DbConnection| -> Vec<i64> {
            queries
                .iter()
                .map(|q| {
                    let page = q.run_scoped(c, None).expect("page");
                    assert!(page.total_is_exact, "{q:?}");
                    page.total
                })
                .collect()
        };
        let want: Vec<i64> = queries.iter().map(|q| expected(c, q)).collect();
        assert_eq!(want, [12, 2, 4, 8], "the fixture");
        assert_eq!(totals(c), want);
        if db.kind == frontdesk_core::db::BackendKind::Postgres {
            c.batch_execute(&format!(
                "INSERT INTO set_counts (counted, key, n) VALUES ('users', 0, 1000), ('tag', {vip}, 100)"
            ))
            .expect("a hand-made row");
            assert_eq!(totals(c), [1012, 1002, 104, 908]);
        }
    }
}

/// A read past the fold threshold on a connection that cannot write (a
/// read-only transaction) still gives the exact count; the next read that can
/// write folds the rows into one.
#[test]
fn a_count_that_cannot_fold_still_counts() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let c = &mut *db.conn();
    for i in 0..100 {
        c.batch_execute(&format!(
            "INSERT INTO users (email, created_at, updated_at) \
             VALUES ('one{i}@example.com', now(), now())"
        ))
        .expect("one user per statement");
    }
    let rows = |c: &mut DbConnection| -> i64 {
        diesel::sql_query(
            "SELECT 'users' AS name, 0::bigint AS key, count(*) AS n FROM set_counts \
             WHERE counted = 'users'",
        )
        .get_result::<SetRows>(c)
        .expect("rows")
        .n
    };
    // One row per insert (the migration wrote none for no users).
    assert_eq!(rows(c), 100);
    c.transaction::<_, diesel::result::Error, _>(|c| {
        c.batch_execute("SET TRANSACTION READ ONLY")?;
        assert_eq!(counts::count(c, CountedSet::Users)?, Some(100));
        Ok(())
    })
    .expect("a read-only read");
    assert_eq!(rows(c), 100, "nothing folded read-only");
    assert_eq!(
        counts::count(c, CountedSet::Users).expect("count"),
        Some(100)
    );
    assert_eq!(rows(c), 1, "folded by the next read");
}

/// An installation with users and tags before the migration gets its counts
/// from it: the migration (and the ones after it) reverted, rows written
/// without the triggers, the migrations run again.
#[test]
fn the_migration_counts_what_is_already_there() {
    use diesel::pg::PgConnection;
    use diesel_migrations::{FileBasedMigrations, MigrationHarness};
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/frontdesk-core/migrations/postgres"
    );
    let migrations = || FileBasedMigrations::from_path(dir).expect("migrations");
    let mut pg = PgConnection::establish(&db.url).expect("connect");
    pg.batch_execute("SET search_path TO frontdesk")
        .expect("path");
    loop {
        let reverted = pg.revert_last_migration(migrations()).expect("revert");
        if reverted.to_string().starts_with("20261212000100") {
            break;
        }
    }
    pg.batch_execute(
        "INSERT INTO users (email, created_at, updated_at) \
           SELECT 'before' || g || '@example.com', now(), now() FROM generate_series(1, 40) g; \
         INSERT INTO tags (name, created_at) VALUES ('early', now()), ('late', now()); \
         INSERT INTO user_tags (user_id, tag_id, created_at) \
           SELECT u.id, t.id, now() FROM users u, tags t \
           WHERE (t.name = 'early' AND u.id % 2 = 0) OR (t.name = 'late' AND u.id % 5 = 0)",
    )
    .expect("rows without the triggers");
    pg.run_pending_migrations(migrations())
        .expect("migrations again");
    let c = &mut *db.conn();
    let tag_ids: Vec<i64> = tags_t::table.select(tags_t::id).load(c).expect("tags");
    assert_eq!(tag_ids.len(), 2);
    assert_counts_exact(c, &tag_ids, "the migration");
    assert_eq!(
        counts::count(c, CountedSet::Users).expect("count"),
        Some(40)
    );
}
