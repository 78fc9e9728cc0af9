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
