//! Every request frontdesk serves carries a request id: in the
//! `X-Request-Id` answer header, in problem+json bodies (`request_id`), an
//! incoming plain id kept, anything else replaced.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;

use crate::both;
use crate::web_app::{block_on, builder, Browser};

both!(every_answer_names_its_request, |db| block_on(async {
    let fd = builder(db).build().expect("frontdesk");
    let app = crate::host_app!(fd);
    let mut b = Browser::new();

    // Auth pages, admin pages and the API, each with an id of its own.
    let mut seen = Vec::new();
    for uri in ["/auth/login", "/admin/", "/admin/api/v1/users"] {
        let page = b.get(&app, uri).await;
        let id = page.header("x-request-id").expect(uri).to_owned();
        assert_eq!(id.len(), 24, "{uri}: {id}");
        seen.push(id);
    }
    seen.dedup();
    assert_eq!(seen.len(), 3, "one id per request");

    // A problem document carries the same id as its header.
    let page = b.get(&app, "/admin/api/v1/users?limit=0").await;
    assert!(page.status.is_client_error());
    let body: serde_json::Value = serde_json::from_str(&page.body).expect("problem");
    assert_eq!(
        body["request_id"].as_str(),
        page.header("x-request-id"),
        "{}",
        page.body
    );

    // An incoming plain id is kept (a proxy's id follows the request)...
    let page = b
        .send(
            &app,
            TestRequest::get()
                .uri("/admin/api/v1/nope")
                .insert_header(("x-request-id", "edge-42.a_b")),
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(page.header("x-request-id"), Some("edge-42.a_b"));
    assert!(
        page.body.contains("\"request_id\":\"edge-42.a_b\""),
        "{}",
        page.body
    );
    // ...anything else is replaced.
    let page = b
        .send(
            &app,
            TestRequest::get()
                .uri("/auth/login")
                .insert_header(("x-request-id", "two words")),
        )
        .await;
    let id = page.header("x-request-id").expect("id");
    assert_ne!(id, "two words");
    assert_eq!(id.len(), 24);
}));

// Log lines carry the request's id and span across the blocking pool, an
// internal error is logged once, and nothing secret is logged at any level:
// passwords, API keys, tokens in paths; nor full addresses at info or above.
both!(log_lines_name_their_request_and_keep_secrets_out, |db| {
    block_on(async {
        use crate::api_v1_support::{call, world, Who};
        use diesel::connection::SimpleConnection;

        crate::captured_log::install();
        let fd = crate::web_app::frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        let wrong = "Tr0ub4dor&3 is not it";
        let token = "tok3n-in-the-path-4c1d9e";

        let mut b = Browser::new();
        let page = b.login(&app, &w.acme_member.email, wrong).await;
        assert!(!page.status.is_redirection(), "{}", page.body);
        let page = b
            .login(&app, &w.acme_member.email, crate::web_app::PASSWORD)
            .await;
        assert!(page.status.is_redirection(), "{}", page.body);
        let page = b.get(&app, &format!("/auth/invitations/{token}")).await;
        assert!(page.status.is_client_error(), "{}", page.status);
        let listed = call(&app, &w, Who::StaffOwnerKey, "GET", "/users", None).await;
        assert_eq!(listed.status, StatusCode::OK);

        // A failure inside a service call, on the blocking pool.
        db.conn()
            .batch_execute("ALTER TABLE user_services RENAME TO user_services_gone")
            .expect("rename");
        let failed = call(&app, &w, Who::StaffOwnerKey, "GET", "/users", None).await;
        assert_eq!(
            failed.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            failed.raw
        );
        let id = failed.body["request_id"]
            .as_str()
            .expect("request id")
            .to_owned();
        assert!(
            !failed.raw.contains("user_services"),
            "the database's message stays in the log"
        );

        let lines = crate::captured_log::lines();
        let keys: Vec<&String> = w.keys.values().collect();
        for line in &lines {
            for secret in [crate::web_app::PASSWORD, wrong, token] {
                assert!(!line.contains(secret), "{secret:?} logged: {line}");
            }
            for key in &keys {
                assert!(!line.contains(key.as_str()), "an API key logged: {line}");
            }
            if line.contains(" INFO ") || line.contains(" WARN ") || line.contains(" ERROR ") {
                for user in [&w.acme_member, &w.staff_owner, &w.acme_admin] {
                    assert!(!line.contains(&user.email), "an address logged: {line}");
                }
            }
        }
        let mine: Vec<&String> = lines.iter().filter(|l| l.contains(&id)).collect();
        let errors: Vec<&&String> = mine.iter().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(errors.len(), 1, "logged once: {mine:#?}");
        let error = errors[0];
        assert!(
            error.contains("user_services"),
            "the cause is in it: {error}"
        );
        assert!(
            error.contains(&format!("request{{request_id={id} method=GET}}")),
            "in the request's span: {error}"
        );
        assert!(
            error.contains(":core{call="),
            "in the service call's span: {error}"
        );
        // The request's span, closed, names its route and status.
        assert!(
            mine.iter()
                .any(|l| l.contains("route=/admin/api/v1/users") && l.contains("status=500")),
            "{mine:#?}"
        );
    })
});
