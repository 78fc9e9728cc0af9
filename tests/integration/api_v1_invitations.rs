//! `/invitations`: create (mail queued), list with delivery state, resend,
//! cancel; organization scoping and roles.

use diesel::prelude::*;
use frontdesk_core::schema::{invitations as inv_t, outbox};
use serde_json::json;

use crate::api_v1_support::*;
use crate::both_and_axum;
use crate::support::TestDb;
use crate::web_app::{block_on, frontdesk};

fn mails_to(db: &TestDb, email: &str) -> Vec<String> {
    outbox::table
        .filter(outbox::recipient.eq(email))
        .order(outbox::id.asc())
        .select(outbox::status)
        .load(&mut *db.conn())
        .expect("outbox")
}

both_and_axum!(invitations_create_list_resend_cancel, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world(db, &app).await;
        let body = |role: &str| {
            Some(
                json!({"organization": "acme", "email": "New@Example.com", "role": role, "message": "Welcome!\nSee you"}),
            )
        };
        for (who, role, status) in [
            (Who::Anonymous, "member", 401),
            (Who::MemberSession, "member", 403),
            (Who::AcmeAdminSessionNoCsrf, "member", 403),
            (Who::AcmeMemberKey, "member", 403),
            (Who::StaffViewerKey, "member", 403),
            (Who::AcmeAdminKey, "owner", 403),
            (Who::GlobexAdminKey, "member", 404),
        ] {
            expect(&app, &w, who, "POST", "/invitations", body(role), status).await;
        }
        assert!(
            mails_to(db, "new@example.com").is_empty(),
            "refused calls queue nothing"
        );
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            "/invitations",
            body("member"),
            201,
        )
        .await;
        assert_eq!(a.body["email"], "new@example.com");
        assert_eq!(a.body["status"], "pending");
        assert_eq!(a.body["organization_slug"], "acme");
        assert!(
            !a.raw.contains("token"),
            "the link's secret goes by mail only"
        );
        let id = a.body["id"].as_i64().expect("id");
        assert_eq!(mails_to(db, "new@example.com"), ["queued"]);
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminSession,
            "POST",
            "/invitations",
            body("member"),
            409,
        )
        .await;
        assert!(a.body["detail"].as_str().unwrap_or("").contains("pending"));
        for (bad, field) in [
            (
                json!({"organization": "acme", "email": "not-an-email", "role": "member"}),
                "email",
            ),
            (
                json!({"organization": "acme", "email": "a@b.test", "role": "king"}),
                "role",
            ),
            (
                json!({"organization": "acme", "email": "a@b.test", "role": "member", "message": "x".repeat(1001)}),
                "message",
            ),
            (json!({"organization": "acme", "role": "member"}), "email"),
        ] {
            let a = expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "POST",
                "/invitations",
                Some(bad),
                400,
            )
            .await;
            assert_eq!(a.body["errors"][0]["field"], field, "{}", a.raw);
        }
        let n: i64 = inv_t::table
            .count()
            .get_result(&mut *db.conn())
            .expect("count");
        assert_eq!(n, 1);

        let a = expect(
            &app,
            &w,
            Who::AcmeMemberKey,
            "GET",
            "/invitations",
            None,
            200,
        )
        .await;
        assert_eq!(a.body["pagination"]["total"], 1);
        assert_eq!(a.body["invitations"][0]["delivery"]["status"], "queued");
        let a = expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "GET",
            "/invitations",
            None,
            200,
        )
        .await;
        assert_eq!(
            a.body["pagination"]["total"], 0,
            "globex sees none of acme's"
        );
        let a = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/invitations?status=pending&organization=acme&email=new",
            None,
            200,
        )
        .await;
        assert_eq!(a.body["pagination"]["total"], 1);
        let a = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/invitations?status=cancelled",
            None,
            200,
        )
        .await;
        assert_eq!(a.body["pagination"]["total"], 0);
        expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/invitations?status=lost",
            None,
            400,
        )
        .await;
        expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "GET",
            &format!("/invitations/{id}"),
            None,
            404,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeMemberKey,
            "GET",
            &format!("/invitations/{id}"),
            None,
            200,
        )
        .await;

        let resend = format!("/invitations/{id}/resend");
        expect(&app, &w, Who::AcmeMemberKey, "POST", &resend, None, 403).await;
        expect(&app, &w, Who::GlobexAdminKey, "POST", &resend, None, 404).await;
        let a = expect(&app, &w, Who::AcmeAdminKey, "POST", &resend, None, 200).await;
        assert_eq!(a.body["send_count"], 2);
        let mails = mails_to(db, "new@example.com");
        assert_eq!(mails.len(), 2, "a new mail with a new link: {mails:?}");
        assert_eq!(mails[1], "queued");

        let cancel = format!("/invitations/{id}/cancel");
        expect(&app, &w, Who::GlobexAdminKey, "POST", &cancel, None, 404).await;
        expect(
            &app,
            &w,
            Who::AcmeAdminSessionNoCsrf,
            "POST",
            &cancel,
            None,
            403,
        )
        .await;
        let a = expect(&app, &w, Who::AcmeAdminSession, "POST", &cancel, None, 200).await;
        assert_eq!(a.body["status"], "cancelled");
        let status: String = inv_t::table
            .find(id)
            .select(inv_t::status)
            .first(&mut *db.conn())
            .expect("row");
        assert_eq!(status, "cancelled");
        let a = expect(&app, &w, Who::AcmeAdminKey, "POST", &resend, None, 409).await;
        assert_eq!(a.problem_type(), "urn:frontdesk:problem:conflict");
        expect(&app, &w, Who::AcmeAdminKey, "POST", &cancel, None, 409).await;
        assert!(
            mails_to(db, "new@example.com")
                .iter()
                .all(|s| s != "queued"),
            "no mail with a dead link goes out"
        );
    });
});

both_and_axum!(invitations_carry_the_invitees_names, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world(db, &app).await;
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            "/invitations",
            Some(
                json!({"organization": "acme", "email": "ada@example.com", "role": "member",
                "first_name": " Ada ", "last_name": "Lovelace"}),
            ),
            201,
        )
        .await;
        assert_eq!(a.body["first_name"], "Ada");
        assert_eq!(a.body["last_name"], "Lovelace");
        let id = a.body["id"].as_i64().expect("id");
        let stored: (Option<String>, Option<String>) = inv_t::table
            .find(id)
            .select((inv_t::first_name, inv_t::last_name))
            .first(&mut *db.conn())
            .expect("row");
        assert_eq!(stored, (Some("Ada".into()), Some("Lovelace".into())));
        let got = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/invitations/{id}"),
            None,
            200,
        )
        .await;
        assert_eq!(got.body["first_name"], "Ada");
        let list = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/invitations",
            None,
            200,
        )
        .await;
        let listed = list.body["invitations"]
            .as_array()
            .expect("invitations")
            .iter()
            .find(|i| i["id"] == id)
            .cloned()
            .expect("listed");
        assert_eq!(listed["last_name"], "Lovelace");

        // Without names: null.
        let b = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            "/invitations",
            Some(json!({"organization": "acme", "email": "anon@example.com", "role": "member"})),
            201,
        )
        .await;
        assert!(b.body["first_name"].is_null() && b.body["last_name"].is_null());

        // Bad names are refused, field by field, and nothing is stored.
        let before: i64 = inv_t::table
            .count()
            .get_result(&mut *db.conn())
            .expect("count");
        for (body, field) in [
            (
                json!({"organization": "acme", "email": "x@example.com", "role": "member", "first_name": "x".repeat(101)}),
                "first_name",
            ),
            (
                json!({"organization": "acme", "email": "x@example.com", "role": "member", "last_name": "a\u{1b}b"}),
                "last_name",
            ),
            (
                json!({"organization": "acme", "email": "x@example.com", "role": "member", "first_name": 7}),
                "",
            ),
        ] {
            let r = expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "POST",
                "/invitations",
                Some(body),
                400,
            )
            .await;
            if !field.is_empty() {
                assert_eq!(r.body["errors"][0]["field"], field, "{}", r.raw);
            }
        }
        let after: i64 = inv_t::table
            .count()
            .get_result(&mut *db.conn())
            .expect("count");
        assert_eq!(after, before);
    });
});
