//! `/scim/v2`: a directory provisions one organization's users and groups
//! with its token, in the forms Entra ID and Okta send; what it does is in
//! the database and the audit log under `scim_token:<id>`, and nothing of
//! another organization is ever found or changed.

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header;
use diesel::prelude::*;
use frontdesk_core::schema::{
    audit_events, group_members, groups, memberships, organizations, scim_requests, sessions, users,
};
use frontdesk_core::{scim_tokens, Actor};
use serde_json::{json, Value};

use crate::api_v1_support::{session_for, world_data, World};
use crate::both;
use crate::support::TestDb;
use crate::web_app::{block_on, frontdesk};

pub(crate) const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Value,
}

pub(crate) async fn scim<S, B>(
    app: &S,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Answer
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut req = match method {
        "GET" => actix_web::test::TestRequest::get(),
        "POST" => actix_web::test::TestRequest::post(),
        "PUT" => actix_web::test::TestRequest::put(),
        "PATCH" => actix_web::test::TestRequest::patch(),
        "DELETE" => actix_web::test::TestRequest::delete(),
        other => panic!("method {other}"),
    }
    .uri(&format!("/scim/v2{path}"));
    if !token.is_empty() {
        req = req.insert_header((header::AUTHORIZATION, format!("Bearer {token}")));
    }
    if let Some(b) = body {
        req = req
            .insert_header((header::CONTENT_TYPE, "application/scim+json"))
            .set_payload(b.to_string());
    }
    let res = actix_web::test::call_service(app, req.to_request()).await;
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = actix_web::test::read_body(res).await;
    Answer {
        status,
        content_type,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

pub(crate) fn token_for(db: &TestDb, org: i64) -> (i64, String) {
    let mut conn = db.conn();
    let (t, secret) =
        scim_tokens::create(&mut conn, &Actor::system(), org, "Entra ID").expect("token");
    (t.id, secret.expose().to_owned())
}

fn user_row(db: &TestDb, id: i64) -> Option<(String, String, String, String)> {
    users::table
        .find(id)
        .select((
            users::email,
            users::first_name,
            users::last_name,
            users::status,
        ))
        .first(&mut *db.conn())
        .optional()
        .expect("user")
}

fn orgs_of(db: &TestDb, id: i64) -> Vec<i64> {
    memberships::table
        .filter(memberships::user_id.eq(id))
        .select(memberships::organization_id)
        .load(&mut *db.conn())
        .expect("memberships")
}

fn actions_by(db: &TestDb, actor: &str) -> Vec<String> {
    audit_events::table
        .filter(audit_events::actor.eq(actor))
        .order(audit_events::id.asc())
        .select(audit_events::action)
        .load(&mut *db.conn())
        .expect("audit")
}

fn id_of(a: &Answer) -> i64 {
    a.body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {}", a.body))
}

both!(a_directory_creates_changes_and_deactivates_users, |db| {
    block_on(async {
        let w: World = world_data(db);
        let (token_id, token) = token_for(db, w.acme.id);
        let app = crate::host_app!(frontdesk(db));

        let a = scim(
            &app,
            &token,
            "POST",
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "Grace.Hopper@acme.test",
                "externalId": "e-42",
                "name": {"givenName": "Grace", "familyName": "Hopper"},
                "emails": [{"value": "grace.hopper@acme.test", "type": "work", "primary": true}],
                "active": true,
            })),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.body);
        assert!(
            a.content_type.starts_with("application/scim+json"),
            "{}",
            a.content_type
        );
        let id = id_of(&a);
        assert_eq!(
            a.body["meta"]["location"],
            format!("http://app.test/scim/v2/Users/{id}")
        );
        assert_eq!(a.body["active"], true);
        assert_eq!(
            user_row(db, id),
            Some((
                "grace.hopper@acme.test".into(),
                "Grace".into(),
                "Hopper".into(),
                "active".into()
            ))
        );
        assert_eq!(orgs_of(db, id), vec![w.acme.id]);
        let actor = format!("scim_token:{token_id}");
        assert_eq!(actions_by(db, &actor), ["user.create"]);

        // The same userName again, whatever its case, is a conflict.
        let dup = scim(
            &app,
            &token,
            "POST",
            "/Users",
            Some(json!({"userName": "grace.HOPPER@acme.test"})),
        )
        .await;
        assert_eq!(dup.status, 409, "{}", dup.body);
        assert_eq!(dup.body["scimType"], "uniqueness");
        assert_eq!(
            dup.body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );

        // The lookup a directory makes before creating, and other filters.
        for (filter, expect) in [
            (r#"userName eq "grace.hopper@ACME.test""#, 1),
            (r#"externalId eq "e-42""#, 1),
            (r#"externalId eq "E-42""#, 0),
            (r#"emails co "hopper""#, 1),
            (r#"name.familyName sw "hop" and active eq true"#, 1),
            (r#"userName eq "nobody" or displayName pr"#, 0),
            (r#"emails[type eq "work" and value ew "acme.test"]"#, 4),
        ] {
            let q: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
            let l = scim(&app, &token, "GET", &format!("/Users?filter={q}"), None).await;
            assert_eq!(l.status, 200, "{filter}: {}", l.body);
            assert_eq!(l.body["totalResults"], expect, "{filter}: {}", l.body);
        }
        // acme has an owner, an admin, a member and now Grace; pages of two.
        let l = scim(
            &app,
            &token,
            "GET",
            "/Users?startIndex=2&count=2&attributes=userName",
            None,
        )
        .await;
        assert_eq!(l.body["totalResults"], 4);
        assert_eq!(l.body["itemsPerPage"], 2);
        assert_eq!(l.body["startIndex"], 2);
        let first = &l.body["Resources"][0];
        assert!(first.get("userName").is_some() && first.get("id").is_some());
        assert!(
            first.get("emails").is_none() && first.get("meta").is_none(),
            "{first}"
        );
        let g = scim(
            &app,
            &token,
            "GET",
            &format!("/Users/{id}?excludedAttributes=emails,name.givenName"),
            None,
        )
        .await;
        assert!(g.body.get("emails").is_none());
        assert_eq!(g.body["name"], json!({"familyName": "Hopper"}));

        // Entra ID: capitalised ops, a string "False", a filtered email path.
        let sid = session_for(db, id);
        let p = scim(&app, &token, "PATCH", &format!("/Users/{id}"), Some(json!({
            "schemas": [PATCH],
            "Operations": [
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "g.hopper@acme.test"},
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "value": {"name.givenName": "Amazing Grace", "displayName": "Grace H."}},
            ],
        }))).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(p.body["active"], false);
        assert_eq!(
            user_row(db, id),
            Some((
                "g.hopper@acme.test".into(),
                "Amazing Grace".into(),
                "Hopper".into(),
                "suspended".into()
            ))
        );
        let revoked: Option<chrono::NaiveDateTime> = sessions::table
            .find(sid)
            .select(sessions::revoked_at)
            .first(&mut *db.conn())
            .expect("session");
        assert!(revoked.is_some(), "deactivation ends the user's sessions");

        // Okta: a path-less replace turns the user back on.
        let p = scim(
            &app,
            &token,
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({
                "schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": true}}],
            })),
        )
        .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(user_row(db, id).expect("user").3, "active");

        // PUT replaces: what it leaves out is gone.
        let r = scim(
            &app,
            &token,
            "PUT",
            &format!("/Users/{id}"),
            Some(json!({
                "userName": "grace@acme.test", "name": {"familyName": "Hopper"},
                "emails": [{"value": "grace@acme.test", "primary": true}],
            })),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.body.get("displayName").is_none() && r.body.get("externalId").is_none(),
            "{}",
            r.body
        );
        assert_eq!(user_row(db, id).expect("user").0, "grace@acme.test");

        let bad = scim(
            &app,
            &token,
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({
                "schemas": [PATCH], "Operations": [{"op": "remove"}],
            })),
        )
        .await;
        assert_eq!(
            (bad.status, bad.body["scimType"].as_str()),
            (400, Some("noTarget"))
        );

        // DELETE follows the organization's setting: by default the user
        // only leaves the organization…
        let d = scim(&app, &token, "DELETE", &format!("/Users/{id}"), None).await;
        assert_eq!(d.status, 204);
        assert!(user_row(db, id).is_some());
        assert!(orgs_of(db, id).is_empty());
        assert_eq!(
            scim(&app, &token, "GET", &format!("/Users/{id}"), None)
                .await
                .status,
            404
        );
        // …or the account goes.
        diesel::update(organizations::table.find(w.acme.id))
            .set(organizations::scim_delete.eq("user"))
            .execute(&mut *db.conn())
            .expect("setting");
        let a = scim(
            &app,
            &token,
            "POST",
            "/Users",
            Some(json!({"userName": "temp@acme.test", "active": false})),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.body);
        let temp = id_of(&a);
        assert_eq!(user_row(db, temp).expect("user").3, "suspended");
        assert_eq!(
            scim(&app, &token, "DELETE", &format!("/Users/{temp}"), None)
                .await
                .status,
            204
        );
        assert!(user_row(db, temp).is_none());

        // The directory-sync page's log holds the requests and the failures.
        let failures: i64 = scim_requests::table
            .filter(scim_requests::organization_id.eq(w.acme.id))
            .filter(scim_requests::status.ge(400))
            .count()
            .get_result(&mut *db.conn())
            .expect("log");
        assert_eq!(failures, 3, "the conflict, the bad PATCH and the 404");
    });
});

both!(a_directory_manages_groups_of_its_organization, |db| {
    block_on(async {
        let w = world_data(db);
        let (token_id, token) = token_for(db, w.acme.id);
        let app = crate::host_app!(frontdesk(db));
        let (m, a) = (w.acme_member.id, w.acme_admin.id);

        let c = scim(
            &app,
            &token,
            "POST",
            "/Groups",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Engineering", "externalId": "g-1",
                "members": [{"value": m.to_string()}],
            })),
        )
        .await;
        assert_eq!(c.status, 201, "{}", c.body);
        let gid = id_of(&c);
        assert_eq!(c.body["members"][0]["value"], m.to_string());
        let in_group = |db: &TestDb| -> Vec<i64> {
            group_members::table
                .filter(group_members::group_id.eq(gid))
                .order(group_members::user_id)
                .select(group_members::user_id)
                .load(&mut *db.conn())
                .expect("members")
        };
        assert_eq!(in_group(db), vec![m]);
        let org: i64 = groups::table
            .find(gid)
            .select(groups::organization_id)
            .first(&mut *db.conn())
            .expect("group");
        assert_eq!(org, w.acme.id);

        // Entra ID adds members, then removes one with a filtered path.
        let p = scim(&app, &token, "PATCH", &format!("/Groups/{gid}"), Some(json!({
            "schemas": [PATCH],
            "Operations": [{"op": "Add", "path": "members", "value": [{"value": a.to_string()}]}],
        }))).await;
        assert_eq!(p.status, 200, "{}", p.body);
        let mut both_ids = vec![m, a];
        both_ids.sort();
        assert_eq!(in_group(db), both_ids);
        let p = scim(
            &app,
            &token,
            "PATCH",
            &format!("/Groups/{gid}"),
            Some(json!({
                "schemas": [PATCH],
                "Operations": [{"op": "Remove", "path": format!("members[value eq \"{m}\"]")}],
            })),
        )
        .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(in_group(db), vec![a]);

        // The user's groups show on the user.
        let u = scim(&app, &token, "GET", &format!("/Users/{a}"), None).await;
        assert_eq!(u.body["groups"][0]["display"], "Engineering");

        let q: String =
            url::form_urlencoded::byte_serialize(br#"displayName eq "Engineering""#).collect();
        let l = scim(
            &app,
            &token,
            "GET",
            &format!("/Groups?filter={q}&excludedAttributes=members"),
            None,
        )
        .await;
        assert_eq!(l.body["totalResults"], 1);
        assert!(l.body["Resources"][0].get("members").is_none());
        let q: String =
            url::form_urlencoded::byte_serialize(format!(r#"members eq "{a}""#).as_bytes())
                .collect();
        let l = scim(&app, &token, "GET", &format!("/Groups?filter={q}"), None).await;
        assert_eq!(l.body["totalResults"], 1);

        // Okta renames with a replace and then deletes.
        let p = scim(&app, &token, "PATCH", &format!("/Groups/{gid}"), Some(json!({
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "value": {"id": gid.to_string(), "displayName": "Eng"}}],
        }))).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(p.body["displayName"], "Eng");
        let dup = scim(
            &app,
            &token,
            "POST",
            "/Groups",
            Some(json!({"displayName": "Eng"})),
        )
        .await;
        assert_eq!(
            (dup.status, dup.body["scimType"].as_str()),
            (409, Some("uniqueness"))
        );
        assert_eq!(
            scim(&app, &token, "DELETE", &format!("/Groups/{gid}"), None)
                .await
                .status,
            204
        );
        assert_eq!(
            groups::table
                .count()
                .get_result::<i64>(&mut *db.conn())
                .expect("count"),
            0
        );

        let actor = format!("scim_token:{token_id}");
        assert_eq!(
            actions_by(db, &actor),
            [
                "group.create",
                "group.member.add",
                "group.member.add",
                "group.member.remove",
                "group.update",
                "group.delete"
            ]
        );
    });
});

both!(a_directory_never_reaches_another_organization, |db| {
    block_on(async {
        let w = world_data(db);
        let (_, token) = token_for(db, w.acme.id);
        let (_, globex_token) = token_for(db, w.globex.id);
        let app = crate::host_app!(frontdesk(db));
        let outsider = w.globex_member.id;

        assert_eq!(
            scim(&app, &token, "GET", &format!("/Users/{outsider}"), None)
                .await
                .status,
            404
        );
        for method in ["PUT", "PATCH", "DELETE"] {
            let body = (method != "DELETE").then(|| json!({"schemas": [PATCH], "userName": "x", "Operations": [{"op": "replace", "value": {"active": false}}]}));
            let a = scim(&app, &token, method, &format!("/Users/{outsider}"), body).await;
            assert_eq!(a.status, 404, "{method}: {}", a.body);
        }
        let l = scim(&app, &token, "GET", "/Users?count=100", None).await;
        let names: Vec<&str> = l.body["Resources"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|r| r["userName"].as_str())
            .collect();
        assert!(names.iter().all(|n| n.ends_with("@acme.test")), "{names:?}");
        // The outsider's address is taken, and stays theirs.
        let a = scim(
            &app,
            &token,
            "POST",
            "/Users",
            Some(json!({"userName": "member@globex.test"})),
        )
        .await;
        assert_eq!(
            (a.status, a.body["scimType"].as_str()),
            (409, Some("uniqueness")),
            "{}",
            a.body
        );
        assert_eq!(orgs_of(db, outsider), vec![w.globex.id]);
        assert_eq!(user_row(db, outsider).expect("user").3, "active");
        // A group cannot take them in; a group of the other organization is not found.
        let a = scim(
            &app,
            &token,
            "POST",
            "/Groups",
            Some(json!({"displayName": "X", "members": [{"value": outsider.to_string()}]})),
        )
        .await;
        assert_eq!(
            (a.status, a.body["scimType"].as_str()),
            (400, Some("invalidValue"))
        );
        let g = scim(
            &app,
            &globex_token,
            "POST",
            "/Groups",
            Some(json!({"displayName": "Globex team"})),
        )
        .await;
        assert_eq!(g.status, 201);
        let gid = id_of(&g);
        assert_eq!(
            scim(&app, &token, "GET", &format!("/Groups/{gid}"), None)
                .await
                .status,
            404
        );
        assert_eq!(
            scim(&app, &token, "DELETE", &format!("/Groups/{gid}"), None)
                .await
                .status,
            404
        );
        assert_eq!(
            scim(&app, &token, "GET", "/Groups", None).await.body["totalResults"],
            0
        );

        // Without a token, with an API key or a revoked token: 401.
        assert_eq!(scim(&app, "", "GET", "/Users", None).await.status, 401);
        let key = w.keys.values().next().expect("key").clone();
        assert_eq!(scim(&app, &key, "GET", "/Users", None).await.status, 401);
        let (rid, revoked) = token_for(db, w.acme.id);
        scim_tokens::revoke(&mut db.conn(), &Actor::system(), w.acme.id, rid).expect("revoke");
        let a = scim(&app, &revoked, "GET", "/Users", None).await;
        assert_eq!(a.status, 401);
        assert_eq!(a.body["status"], "401");
        // Another organization cannot revoke acme's token.
        assert!(scim_tokens::revoke(&mut db.conn(), &Actor::system(), w.globex.id, rid).is_err());
    });
});

both!(discovery_and_errors_in_scim_form, |db| {
    block_on(async {
        let w = world_data(db);
        let (_, token) = token_for(db, w.acme.id);
        let app = crate::host_app!(frontdesk(db));
        let spc = scim(&app, &token, "GET", "/ServiceProviderConfig", None).await;
        assert_eq!(spc.body["patch"]["supported"], true);
        assert_eq!(spc.body["filter"]["supported"], true);
        let rt = scim(&app, &token, "GET", "/ResourceTypes", None).await;
        assert_eq!(rt.body["totalResults"], 2);
        let s = scim(
            &app,
            &token,
            "GET",
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
            None,
        )
        .await;
        assert_eq!(s.body["attributes"][0]["name"], "userName");
        assert_eq!(
            scim(&app, &token, "GET", "/Schemas/nope", None)
                .await
                .status,
            404
        );
        assert_eq!(
            scim(
                &app,
                &token,
                "POST",
                "/ServiceProviderConfig",
                Some(json!({}))
            )
            .await
            .status,
            405
        );
        let nf = scim(&app, &token, "GET", "/Nope", None).await;
        assert_eq!((nf.status, nf.body["status"].as_str()), (404, Some("404")));
        let bad = scim(
            &app,
            &token,
            "GET",
            "/Users?filter=userName%20zz%20%22a%22",
            None,
        )
        .await;
        assert_eq!(
            (bad.status, bad.body["scimType"].as_str()),
            (400, Some("invalidFilter"))
        );
        let bad = scim(&app, &token, "POST", "/Users", Some(json!({"name": {}}))).await;
        assert_eq!(
            (bad.status, bad.body["scimType"].as_str()),
            (400, Some("invalidValue"))
        );
        let s = scim(
            &app,
            &token,
            "POST",
            "/Users/.search",
            Some(json!({"filter": "userName sw \"owner\"", "attributes": ["userName"]})),
        )
        .await;
        assert_eq!(s.body["totalResults"], 1, "{}", s.body);
        assert_eq!(
            scim(&app, &token, "POST", "/.search", Some(json!({})))
                .await
                .status,
            501
        );
    });
});

both!(tokens_are_made_listed_and_revoked_through_the_api, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = crate::api_v1_support::world(db, &app).await;
        use crate::api_v1_support::{expect, Who};
        let path = "/organizations/acme/scim-tokens";
        let made = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            path,
            Some(json!({"name": "Okta"})),
            201,
        )
        .await;
        assert_eq!(made.body["scim_base_url"], "http://app.test/scim/v2");
        let token = made.body["token"].as_str().expect("token").to_owned();
        assert!(token.starts_with("fdscim_"));
        let id = made.body["scim_token"]["id"].as_i64().expect("id");
        // Only its digest is kept.
        let stored: String = frontdesk_core::schema::scim_tokens::table
            .find(id)
            .select(frontdesk_core::schema::scim_tokens::token_hash)
            .first(&mut *db.conn())
            .expect("row");
        assert_eq!(stored, frontdesk_core::tokens::hash_token(&token));
        assert_eq!(scim(&app, &token, "GET", "/Users", None).await.status, 200);

        expect(
            &app,
            &w,
            Who::AcmeMemberKey,
            "POST",
            path,
            Some(json!({})),
            403,
        )
        .await;
        expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "POST",
            path,
            Some(json!({})),
            404,
        )
        .await;
        expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "DELETE",
            &format!("{path}/{id}"),
            None,
            404,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            path,
            Some(json!({"role": "owner"})),
            400,
        )
        .await;
        let l = expect(&app, &w, Who::AcmeOwnerKey, "GET", path, None, 200).await;
        assert_eq!(l.body["scim_tokens"][0]["name"], "Okta");
        assert!(l.body["scim_tokens"][0].get("token").is_none());

        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "DELETE",
            &format!("{path}/{id}"),
            None,
            204,
        )
        .await;
        assert_eq!(scim(&app, &token, "GET", "/Users", None).await.status, 401);
        let l = expect(&app, &w, Who::AcmeAdminKey, "GET", path, None, 200).await;
        assert!(l.body["scim_tokens"][0]["revoked_at"].is_string());
        let audit: Vec<String> = audit_events::table
            .filter(audit_events::target.eq(format!("scim_token:{id}")))
            .order(audit_events::id.asc())
            .select(audit_events::action)
            .load(&mut *db.conn())
            .expect("audit");
        assert_eq!(audit, ["scim_token.create", "scim_token.revoke"]);
    });
});

both!(the_directory_sync_page_makes_and_revokes_tokens, |db| {
    block_on(async {
        let w = world_data(db);
        let app = crate::host_app!(frontdesk(db));
        let url = format!("/admin/organizations/{}/directory-sync", w.acme.id);

        // An acme admin (with a password) signs in.
        let mut b = crate::web_app::Browser::new();
        let login = b
            .login(&app, "admin@acme.test", crate::web_app::PASSWORD)
            .await;
        assert!(login.status.is_redirection(), "{}", login.status);
        let page = b.get(&app, &url).await;
        assert_eq!(page.status.as_u16(), 200, "{}", page.body);
        assert!(
            page.body
                .replace("&#x2F;", "/")
                .contains("http://app.test/scim/v2"),
            "{}",
            page.body
        );
        assert!(page.body.contains("The directory has not called yet."));

        let csrf = page.csrf();
        let made = b
            .post(
                &app,
                &format!("{url}/tokens"),
                &[("name", "Okta"), ("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(made.status.as_u16(), 200);
        let start = made.body.find("fdscim_").expect("the token is shown once");
        let token: String = made.body[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        assert!(token.len() > 40, "{token}");
        assert_eq!(
            scim(&app, &token, "GET", "/Users/999999", None)
                .await
                .status,
            404
        );

        // The request and its failure are on the page; the token is not.
        let page = b.get(&app, &url).await;
        assert!(
            page.body
                .replace("&#x2F;", "/")
                .contains("GET /scim/v2/Users/999999"),
            "{}",
            page.body
        );
        assert!(page.body.contains("user not found"));
        assert!(!page.body.contains(&token));

        let csrf = page.csrf();
        let p = b
            .post(
                &app,
                &format!("{url}/delete-mode"),
                &[("scim_delete", "user"), ("csrf_token", &csrf)],
            )
            .await;
        assert!(p.status.is_redirection());
        let mode: String = organizations::table
            .find(w.acme.id)
            .select(organizations::scim_delete)
            .first(&mut *db.conn())
            .expect("org");
        assert_eq!(mode, "user");

        let id: i64 = frontdesk_core::schema::scim_tokens::table
            .select(frontdesk_core::schema::scim_tokens::id)
            .first(&mut *db.conn())
            .expect("token");
        let r = b
            .post(
                &app,
                &format!("{url}/tokens/{id}/revoke"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert!(r.status.is_redirection());
        assert_eq!(scim(&app, &token, "GET", "/Users", None).await.status, 401);

        // A member of acme (no admin access) and globex's admin see nothing.
        let mut m = crate::web_app::Browser::new();
        m.login(&app, "member@acme.test", crate::web_app::PASSWORD)
            .await;
        let page = m.get(&app, &url).await;
        assert!(!page.body.replace("&#x2F;", "/").contains("scim/v2"));
        assert_ne!(page.status.as_u16(), 200);
    });
});
