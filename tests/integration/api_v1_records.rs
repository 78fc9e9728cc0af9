//! Sessions, login attempts, tags and the audit log through the API.

use diesel::prelude::*;
use frontdesk_core::login_attempts::{self, Reason};
use frontdesk_core::schema::{sessions as sessions_t, user_tags};
use frontdesk_core::sessions::ClientInfo;
use serde_json::json;

use crate::api_v1_support::*;
use crate::both_and_axum;
use crate::web_app::{block_on, frontdesk};

both_and_axum!(sessions_list_and_revoke_one, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world(db, &app).await;
        let s_acme = session_for(db, w.acme_member.id);
        let s_globex = session_for(db, w.globex_member.id);
        let a = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/sessions?limit=100",
            None,
            200,
        )
        .await;
        let total = a.body["pagination"]["total"].as_i64().expect("total");
        assert!(
            total >= 5,
            "the signed-in browsers and the two made here ({total})"
        );
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/sessions?limit=100",
            None,
            200,
        )
        .await;
        let ids: Vec<i64> = a.body["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .filter_map(|s| s["id"].as_i64())
            .collect();
        assert!(ids.contains(&s_acme) && !ids.contains(&s_globex), "{ids:?}");
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/users/{}/sessions", w.acme_member.id),
            None,
            200,
        )
        .await;
        assert!(a.body["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .all(|s| s["user_id"] == w.acme_member.id && s["active"] == true));
        for bad in ["active=yes", "user_id=0", "user_id=x", "limit=0", "foo=1"] {
            expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "GET",
                &format!("/sessions?{bad}"),
                None,
                400,
            )
            .await;
        }

        let one = format!("/sessions/{s_acme}");
        for (who, status) in [
            (Who::Anonymous, 401),
            (Who::AcmeMemberKey, 403),
            (Who::StaffViewerKey, 403),
            (Who::GlobexAdminKey, 404),
            (Who::AcmeAdminSessionNoCsrf, 403),
        ] {
            expect(&app, &w, who, "DELETE", &one, None, status).await;
        }
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "DELETE",
            &format!("/sessions/{s_globex}"),
            None,
            404,
        )
        .await;
        let a = expect(&app, &w, Who::AcmeAdminSession, "DELETE", &one, None, 200).await;
        assert_eq!(a.body, json!({"revoked": true}));
        let reason: Option<String> = sessions_t::table
            .find(s_acme)
            .select(sessions_t::revoked_reason)
            .first(&mut *db.conn())
            .expect("session");
        assert_eq!(reason.as_deref(), Some("revoked_by_admin"));
        let a = expect(&app, &w, Who::AcmeAdminKey, "DELETE", &one, None, 200).await;
        assert_eq!(a.body, json!({"revoked": false}));
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/sessions?user_id={}", w.acme_member.id),
            None,
            200,
        )
        .await;
        assert!(
            !a.raw.contains(&format!("\"id\":{s_acme},")),
            "revoked sessions leave the active list"
        );
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/sessions?user_id={}&active=false", w.acme_member.id),
            None,
            200,
        )
        .await;
        assert!(a.body["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .any(|s| s["id"] == s_acme && s["active"] == false));
        let still: Option<chrono::NaiveDateTime> = sessions_t::table
            .find(s_globex)
            .select(sessions_t::revoked_at)
            .first(&mut *db.conn())
            .expect("session");
        assert!(still.is_none());
    });
});

both_and_axum!(login_attempts_list_filters_and_scope, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world_data(db);
        {
            let c = &mut *db.conn();
            let client = ClientInfo {
                ip: Some("10.0.0.1".into()),
                user_agent: None,
            };
            login_attempts::record(
                c,
                Some(w.acme_member.id),
                "member@acme.test",
                &client,
                Reason::BadPassword,
            )
            .expect("attempt");
            login_attempts::record(
                c,
                Some(w.acme_member.id),
                "member@acme.test",
                &client,
                Reason::Success,
            )
            .expect("attempt");
            login_attempts::record(
                c,
                Some(w.globex_member.id),
                "member@globex.test",
                &client,
                Reason::BadPassword,
            )
            .expect("attempt");
            login_attempts::record(
                c,
                None,
                "ghost@x.test",
                &ClientInfo::default(),
                Reason::UnknownEmail,
            )
            .expect("attempt");
        }
        let a = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/login-attempts",
            None,
            200,
        )
        .await;
        assert_eq!(a.body["pagination"]["total"], 4);
        let a = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/login-attempts?success=false&ip=10.0.0.1",
            None,
            200,
        )
        .await;
        assert_eq!(a.body["pagination"]["total"], 2);
        let a = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/login-attempts?email=MEMBER@acme.test&success=true",
            None,
            200,
        )
        .await;
        assert_eq!(a.body["login_attempts"][0]["reason"], "success");
        let a = expect(
            &app,
            &w,
            Who::AcmeMemberKey,
            "GET",
            "/login-attempts",
            None,
            200,
        )
        .await;
        assert_eq!(
            a.body["pagination"]["total"], 2,
            "acme sees its members' attempts only: {}",
            a.raw
        );
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/login-attempts?user_id={}", w.globex_member.id),
            None,
            200,
        )
        .await;
        assert_eq!(a.body["pagination"]["total"], 0);
        for bad in ["success=1", "user_id=-1", "page=0", "limit=101", "when=now"] {
            expect(
                &app,
                &w,
                Who::StaffViewerKey,
                "GET",
                &format!("/login-attempts?{bad}"),
                None,
                400,
            )
            .await;
        }
        expect(
            &app,
            &w,
            Who::Anonymous,
            "GET",
            "/login-attempts",
            None,
            401,
        )
        .await;
    });
});

both_and_axum!(tags_create_assign_and_filter, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world(db, &app).await;
        for (who, status) in [
            (Who::Anonymous, 401),
            (Who::StaffViewerKey, 403),
            (Who::AcmeOwnerKey, 403),
            (Who::AcmeAdminSession, 403),
        ] {
            expect(
                &app,
                &w,
                who,
                "POST",
                "/tags",
                Some(json!({"name": "vip"})),
                status,
            )
            .await;
        }
        let a = expect(
            &app,
            &w,
            Who::StaffAdminKey,
            "POST",
            "/tags",
            Some(json!({"name": "VIP"})),
            201,
        )
        .await;
        assert_eq!(a.body["name"], "vip");
        let tag = a.body["id"].as_i64().expect("id");
        expect(
            &app,
            &w,
            Who::StaffAdminKey,
            "POST",
            "/tags",
            Some(json!({"name": "vip"})),
            409,
        )
        .await;
        let a = expect(
            &app,
            &w,
            Who::StaffAdminKey,
            "POST",
            "/tags",
            Some(json!({"name": "a,b"})),
            400,
        )
        .await;
        assert_eq!(a.body["errors"][0]["field"], "tag");
        let a = expect(&app, &w, Who::AcmeMemberKey, "GET", "/tags", None, 200).await;
        assert_eq!(a.body["tags"][0]["name"], "vip");

        let on = format!("/users/{}/tags/{tag}", w.acme_member.id);
        expect(&app, &w, Who::AcmeMemberKey, "PUT", &on, None, 403).await;
        expect(&app, &w, Who::GlobexAdminKey, "PUT", &on, None, 404).await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "PUT",
            &format!("/users/{}/tags/987654", w.acme_member.id),
            None,
            404,
        )
        .await;
        expect(&app, &w, Who::AcmeAdminKey, "PUT", &on, None, 204).await;
        expect(&app, &w, Who::AcmeAdminKey, "PUT", &on, None, 204).await;
        let tagged: i64 = user_tags::table
            .filter(user_tags::tag_id.eq(tag))
            .count()
            .get_result(&mut *db.conn())
            .expect("count");
        assert_eq!(tagged, 1);
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/users?tags_all={tag}"),
            None,
            200,
        )
        .await;
        assert_eq!(emails(&a), ["member@acme.test"]);
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/users/{}", w.acme_member.id),
            None,
            200,
        )
        .await;
        assert_eq!(a.body["tags"][0]["name"], "vip");
        expect(&app, &w, Who::AcmeAdminSession, "DELETE", &on, None, 204).await;
        let tagged: i64 = user_tags::table
            .filter(user_tags::tag_id.eq(tag))
            .count()
            .get_result(&mut *db.conn())
            .expect("count");
        assert_eq!(tagged, 0);
    });
});

both_and_axum!(audit_log_is_scoped, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world_data(db);
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            &format!("/users/{}/suspend", w.acme_member.id),
            Some(json!({"reason": "spam"})),
            200,
        )
        .await;
        expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "POST",
            &format!("/users/{}/suspend", w.globex_member.id),
            None,
            200,
        )
        .await;
        let a = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/audit-events?action=user.suspend",
            None,
            200,
        )
        .await;
        assert_eq!(a.body["pagination"]["total"], 2);
        let a = expect(
            &app,
            &w,
            Who::AcmeMemberKey,
            "GET",
            "/audit-events?action=user.suspend",
            None,
            200,
        )
        .await;
        assert_eq!(a.body["pagination"]["total"], 1);
        let e = &a.body["audit_events"][0];
        assert_eq!(e["target"], format!("user:{}", w.acme_member.id));
        assert_eq!(e["details"]["reason"], "spam");
        assert!(e["actor"].as_str().unwrap_or("").starts_with("api_key:"));
        let a = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            &format!("/audit-events?target=user:{}&limit=1", w.globex_member.id),
            None,
            200,
        )
        .await;
        assert_eq!(a.body["audit_events"].as_array().map(Vec::len), Some(1));
        expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/audit-events?limit=500",
            None,
            400,
        )
        .await;
        expect(&app, &w, Who::Anonymous, "GET", "/audit-events", None, 401).await;
    });
});
