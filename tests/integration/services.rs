//! The host's services: declared in the builder and synced at start, each
//! sign-in counted for the services its session is used on, and the
//! organization API's `services` fields and `service_id` filter.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use diesel::prelude::*;
use frontdesk::CurrentUser;
use frontdesk_core::activity::ActivityConfig;
use frontdesk_core::schema::{services, user_services};
use frontdesk_core::services as core_services;
use serde_json::{json, Value};

use crate::api_v1_support::{expect, session_for, world, Who};
use crate::both;
use crate::support::TestDb;
use crate::web_app::{block_on, builder, user_with_password, Browser, PASSWORD};

async fn page(_me: CurrentUser) -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

fn declared(db: &TestDb) -> Vec<(String, String)> {
    services::table
        .select((services::slug, services::name))
        .order(services::slug.asc())
        .load(&mut *db.conn())
        .expect("services")
}

both!(services_are_synced_at_start_with_a_default, |db| {
    builder(db).build().expect("frontdesk");
    assert_eq!(declared(db), vec![("app".to_owned(), "Notes".to_owned())]);
    builder(db)
        .service("main-app", "Main Application")
        .service("mobile-api", "Mobile")
        .build()
        .expect("frontdesk");
    builder(db)
        .service("main-app", "Main Application")
        .service("mobile-api", "Mobile API")
        .build()
        .expect("frontdesk");
    // New ones added, names updated, the earlier default kept with its history.
    assert_eq!(
        declared(db),
        vec![
            ("app".to_owned(), "Notes".to_owned()),
            ("main-app".to_owned(), "Main Application".to_owned()),
            ("mobile-api".to_owned(), "Mobile API".to_owned()),
        ]
    );
    for bad in ["Main App", "", "-x", "a/b"] {
        let e = builder(db).service(bad, "X").build().err().expect(bad);
        assert!(e.to_string().contains("service slug"), "{bad}: {e}");
    }
});

/// (slug, first, last) of a user's services.
fn sign_ins(
    db: &TestDb,
    user_id: i64,
) -> Vec<(String, chrono::NaiveDateTime, chrono::NaiveDateTime)> {
    user_services::table
        .inner_join(services::table)
        .filter(user_services::user_id.eq(user_id))
        .select((
            services::slug,
            user_services::first_login_at,
            user_services::last_login_at,
        ))
        .order(services::slug.asc())
        .load(&mut *db.conn())
        .expect("user services")
}

fn session_started(db: &TestDb, user_id: i64) -> chrono::NaiveDateTime {
    use frontdesk_core::schema::sessions;
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .select(sessions::created_at)
        .order(sessions::id.desc())
        .first(&mut *db.conn())
        .expect("session")
}

both!(
    each_sign_in_is_recorded_for_the_services_it_is_used_on,
    |db| {
        block_on(async {
            let fd = builder(db)
                .service("main-app", "Main Application")
                .service("mobile-api", "Mobile API")
                .activity(ActivityConfig::default())
                .build()
                .expect("frontdesk");
            let app = actix_web::test::init_service(
                actix_web::App::new()
                    .configure(fd.configure())
                    .service(
                        web::scope("/mobile")
                            .wrap(fd.activity_middleware().service("mobile-api"))
                            .route("/notes", web::get().to(page)),
                    )
                    .service(
                        web::scope("/web")
                            .wrap(fd.activity_middleware().service("main-app"))
                            .route("/notes", web::get().to(page)),
                    ),
            )
            .await;
            let ada = user_with_password(db, "ada@example.com");
            // Anonymous requests sign nobody in.
            Browser::new().get(&app, "/web/notes").await;

            let mut b = Browser::new();
            b.login(&app, "ada@example.com", PASSWORD).await;
            let first = session_started(db, ada.id);
            for _ in 0..2 {
                assert_eq!(b.get(&app, "/web/notes").await.status, StatusCode::OK);
            }
            fd.activity().flushed().await;
            assert_eq!(
                sign_ins(db, ada.id),
                vec![("main-app".to_owned(), first, first)]
            );

            // A later sign-in, used on both services.
            std::thread::sleep(std::time::Duration::from_millis(5));
            let mut b2 = Browser::new();
            b2.login(&app, "ada@example.com", PASSWORD).await;
            let second = session_started(db, ada.id);
            assert!(second > first);
            b2.get(&app, "/web/notes").await;
            b2.get(&app, "/mobile/notes").await;
            // The first session, used again: not a new sign-in.
            b.get(&app, "/web/notes").await;
            fd.activity().flushed().await;
            assert_eq!(
                sign_ins(db, ada.id),
                vec![
                    ("main-app".to_owned(), first, second),
                    ("mobile-api".to_owned(), second, second),
                ]
            );
        });
    }
);

both!(organization_api_services_and_service_id_filter, |db| {
    block_on(async {
        let fd = builder(db)
            .service("main-app", "Main Application")
            .service("mobile-app", "Mobile App")
            .build()
            .expect("frontdesk");
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        let svc: Vec<core_services::Service> =
            core_services::list(&mut db.conn()).expect("services");
        let main = svc
            .iter()
            .find(|s| s.slug == "main-app")
            .expect("main")
            .clone();
        let mobile = svc
            .iter()
            .find(|s| s.slug == "mobile-app")
            .expect("mobile")
            .clone();
        let t = frontdesk_core::time::now();
        let h = chrono::Duration::hours(1);
        {
            let mut conn = db.conn();
            let member = w.acme_member.id;
            let s1 = session_for(db, member);
            let s2 = session_for(db, member);
            core_services::record_sign_in(&mut conn, member, s1, main.id, t - h).expect("in");
            core_services::record_sign_in(&mut conn, member, s2, main.id, t).expect("in");
            core_services::record_sign_in(&mut conn, member, s2, mobile.id, t).expect("in");
            let admin = w.acme_admin.id;
            let s3 = session_for(db, admin);
            core_services::record_sign_in(&mut conn, admin, s3, mobile.id, t).expect("in");
        }

        // The list: each user's service slugs.
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/organizations/acme/users?limit=100",
            None,
            200,
        )
        .await;
        let users = a.body["users"].as_array().expect("users");
        let of = |email: &str| -> Value {
            users
                .iter()
                .find(|u| u["email"] == email)
                .map(|u| u["services"].clone())
                .unwrap_or(Value::Null)
        };
        assert_eq!(of(&w.acme_member.email), json!(["main-app", "mobile-app"]));
        assert_eq!(of(&w.acme_admin.email), json!(["mobile-app"]));
        assert_eq!(of(&w.acme_owner.email), json!([]));
        for key in [
            "id",
            "email",
            "created_at",
            "last_login_at",
            "mfa_enabled",
            "services",
        ] {
            assert!(users[0].get(key).is_some(), "{key} in {}", users[0]);
        }

        // The detail: the services with their first and latest sign-in.
        let path = format!("/organizations/acme/users/{}", w.acme_member.id);
        let a = expect(&app, &w, Who::AcmeAdminKey, "GET", &path, None, 200).await;
        let iso = |t: chrono::NaiveDateTime| json!(t.and_utc());
        assert_eq!(
            a.body["services"],
            json!([
                { "id": main.id, "slug": "main-app", "name": "Main Application",
                  "first_login_at": iso(t - h), "last_login_at": iso(t) },
                { "id": mobile.id, "slug": "mobile-app", "name": "Mobile App",
                  "first_login_at": iso(t), "last_login_at": iso(t) },
            ])
        );

        // service_id: a slug or an id, on the organization's list and the staff list.
        let emails = |a: &crate::api_v1_support::Answer| {
            let mut v = crate::api_v1_support::emails(a);
            v.sort();
            v
        };
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/organizations/acme/users?service_id=main-app",
            None,
            200,
        )
        .await;
        assert_eq!(emails(&a), vec![w.acme_member.email.clone()]);
        let q = format!("/organizations/acme/users?service_id={}", mobile.id);
        let a = expect(&app, &w, Who::AcmeAdminKey, "GET", &q, None, 200).await;
        let mut both = vec![w.acme_admin.email.clone(), w.acme_member.email.clone()];
        both.sort();
        assert_eq!(emails(&a), both);
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/users?service_id=main-app",
            None,
            200,
        )
        .await;
        assert_eq!(emails(&a), vec![w.acme_member.email.clone()]);
        // Another organization's members never show, whatever the service.
        let a = expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "GET",
            "/users?service_id=mobile-app",
            None,
            200,
        )
        .await;
        assert!(emails(&a).is_empty(), "{:?}", emails(&a));
        // The users page: the same filter (a select of the services) and a column.
        let (mut staff, _) = w.browsers[&Who::StaffOwnerSession].clone();
        let page = staff
            .get(&app, &format!("/admin/users?service={}", main.id))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(&w.acme_member.email));
        assert!(!page.body.contains(&w.acme_admin.email));
        assert!(page.body.contains(&format!(
            "<option value=\"{}\" selected>Main Application",
            main.id
        )));
        assert!(page.body.contains("<td data-label=\"Services\"><span class=\"fda-tag\">main-app</span> <span class=\"fda-tag\">mobile-app</span>"));
        // An unknown service is a 400 naming the parameter.
        for path in [
            "/organizations/acme/users?service_id=nope",
            "/organizations/acme/users?service_id=999999",
            "/users?service_id=nope",
        ] {
            let a = expect(&app, &w, Who::StaffOwnerKey, "GET", path, None, 400).await;
            assert!(a.raw.contains("service_id"), "{path}: {}", a.raw);
        }
        // The export takes the same filter.
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/export?service_id=main-app&fields=email",
            None,
            200,
        )
        .await;
        let lines: Vec<&str> = a.raw.lines().map(str::trim_end).collect();
        assert_eq!(
            lines,
            vec!["email", w.acme_member.email.as_str()],
            "{}",
            a.raw
        );
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/export?service_id=nope",
            None,
            400,
        )
        .await;
        assert!(a.raw.contains("service_id"), "{}", a.raw);

        // The admin user page lists the user's services with their sign-ins.
        let page = staff
            .get(&app, &format!("/admin/users/{}", w.acme_member.id))
            .await;
        let section = page
            .body
            .split("<h2>Services</h2>")
            .nth(1)
            .expect("a Services section")
            .split("</table>")
            .next()
            .expect("its table");
        assert!(section.contains("Main Application"), "{section}");
        assert!(section.contains("Mobile App"), "{section}");
        assert_eq!(section.matches("<tr><td>").count(), 2, "{section}");
    });
});

both!(
    the_login_page_and_json_login_say_which_service_a_sign_in_is_for,
    |db| {
        use frontdesk_core::schema::login_attempts;
        block_on(async {
            let fd = builder(db)
                .service("web", "Web")
                .service("mobile-api", "Mobile API")
                .build()
                .expect("frontdesk");
            let app = crate::host_app!(fd);
            let ann = user_with_password(db, "ann@example.com");
            let on = |db: &TestDb| -> Vec<String> {
                user_services::table
                    .inner_join(services::table)
                    .filter(user_services::user_id.eq(ann.id))
                    .select(services::slug)
                    .order(services::slug.asc())
                    .load(&mut *db.conn())
                    .expect("services")
            };
            let json_login = |body: Value| {
                actix_web::test::TestRequest::post()
                    .uri("/auth/api/login")
                    .insert_header(("content-type", "application/json"))
                    .insert_header(("origin", "http://app.test"))
                    .set_payload(body.to_string())
            };

            // An unknown service is refused by name before the password is tried.
            let res = Browser::new()
                .send(
                    &app,
                    json_login(json!({"email": "ann@example.com", "password": PASSWORD,
                                  "service": "desktop"})),
                )
                .await;
            assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
            assert!(res.body.contains("service"), "{}", res.body);
            let tried: i64 = login_attempts::table
                .count()
                .get_result(&mut *db.conn())
                .expect("count");
            assert_eq!(tried, 0);

            // The JSON sign-in for the mobile API counts there at once.
            let res = Browser::new()
                .send(
                    &app,
                    json_login(json!({"email": "ann@example.com", "password": PASSWORD,
                                  "service": "mobile-api"})),
                )
                .await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.body);
            assert_eq!(on(db), vec!["mobile-api".to_owned()]);

            // The login page carries the service of its link to the sign-in.
            let mut b = Browser::new();
            let page = b.get(&app, "/auth/login?service=web").await;
            assert!(
                page.body.contains("name=\"service\" value=\"web\""),
                "{}",
                page.body
            );
            let csrf = page.csrf();
            let res = b
                .post(
                    &app,
                    "/auth/login",
                    &[
                        ("email", "ann@example.com"),
                        ("password", PASSWORD),
                        ("service", "web"),
                        ("csrf_token", &csrf),
                    ],
                )
                .await;
            assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
            assert_eq!(on(db), vec!["mobile-api".to_owned(), "web".to_owned()]);
        })
    }
);
