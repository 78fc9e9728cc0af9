//! frontdesk's optional parts switched off with `FrontdeskBuilder::without`:
//! their admin pages and API routes answer 404, their API paths leave the
//! OpenAPI document, and no menu item or link to them is left on the
//! dashboard and users pages.

use actix_web::http::StatusCode;
use frontdesk::Part;

use crate::api_v1_support::*;
use crate::both;
use crate::web_app::{block_on, builder};

/// A page and an API route of each part (GETs a staff owner may open).
fn probes(part: Part) -> (&'static str, &'static str) {
    match part {
        Part::Imports => ("/admin/imports", "/imports"),
        Part::Exports => ("/admin/exports", "/export?fields=email"),
        Part::ApiKeys => ("/admin/api-keys", "/api-keys"),
        Part::Invitations => ("/admin/invitations", "/invitations"),
        // Tags have no page of their own; `tags_switched_off_*` checks them.
        Part::Tags => ("/admin/users", "/tags"),
    }
}

/// The parts with admin pages of their own.
const PAGED: [Part; 4] = [
    Part::Imports,
    Part::Exports,
    Part::ApiKeys,
    Part::Invitations,
];

/// `href`s into the part's admin paths.
fn links_to(html: &str, part: Part) -> Vec<String> {
    let html = html.replace("&#x2F;", "/");
    part.admin_paths()
        .iter()
        .filter_map(|p| {
            let href = format!("href=\"/admin{p}");
            html.contains(&href).then_some(href)
        })
        .collect()
}

both!(each_part_switched_off_is_gone_everywhere, |db| {
    block_on(async {
        let mut w = world_data(db);
        // Everything on: each part is served, listed and linked (the check
        // below would find a remaining link).
        let fd = builder(db).build().expect("frontdesk");
        let app = crate::host_app!(fd);
        let (mut page, csrf) = sign_in(&app, "owner@staff.test").await;
        w.browsers
            .insert(Who::StaffOwnerSession, (page.clone(), csrf));
        let doc = call(
            &app,
            &w,
            Who::StaffOwnerSession,
            "GET",
            "/openapi.json",
            None,
        )
        .await;
        let users = page.get(&app, "/admin/users").await.body;
        let dash = page.get(&app, "/admin/").await.body;
        for part in PAGED {
            let (admin, api) = probes(part);
            assert_eq!(
                page.get(&app, admin).await.status,
                StatusCode::OK,
                "{part:?}"
            );
            let r = call(&app, &w, Who::StaffOwnerSession, "GET", api, None).await;
            assert_eq!(r.status, StatusCode::OK, "{part:?}: {}", r.raw);
            let p = api.split('?').next().unwrap_or(api);
            assert!(doc.body["paths"].get(p).is_some(), "{part:?} in openapi");
            let linked = links_to(&users, part).len() + links_to(&dash, part).len();
            assert!(linked > 0, "{part:?} linked");
        }

        for part in PAGED {
            let fd = builder(db).without(part).build().expect("frontdesk");
            let app = crate::host_app!(fd);
            let (mut page, csrf) = sign_in(&app, "owner@staff.test").await;
            w.browsers
                .insert(Who::StaffOwnerSession, (page.clone(), csrf));
            let (admin, api) = probes(part);
            let res = page.get(&app, admin).await;
            assert_eq!(res.status, StatusCode::NOT_FOUND, "{part:?} page");
            for sub in part.admin_paths() {
                let res = page.get(&app, &format!("/admin{sub}/1")).await;
                assert_eq!(res.status, StatusCode::NOT_FOUND, "{part:?} {sub}/1");
            }
            let r = call(&app, &w, Who::StaffOwnerSession, "GET", api, None).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{part:?} api: {}", r.raw);
            assert_eq!(r.content_type, "application/problem+json");
            for sub in part.api_paths() {
                let r = call(&app, &w, Who::StaffOwnerSession, "POST", sub, None).await;
                assert_eq!(r.status, StatusCode::NOT_FOUND, "{part:?} POST {sub}");
            }
            let doc = call(
                &app,
                &w,
                Who::StaffOwnerSession,
                "GET",
                "/openapi.json",
                None,
            )
            .await;
            let paths = doc.body["paths"].as_object().expect("paths");
            for p in paths.keys() {
                for sub in part.api_paths() {
                    assert!(
                        !(p == sub || p.starts_with(&format!("{sub}/"))),
                        "{part:?}: {p} still in openapi"
                    );
                }
            }
            assert!(paths.contains_key("/users"), "the rest stays");
            // No link left on the dashboard or the users pages.
            for at in [
                "/admin/",
                "/admin/users",
                &format!("/admin/users/{}", w.acme_member.id),
            ] {
                let body = page.get(&app, at).await.body;
                if at.ends_with(&w.acme_member.id.to_string()) && part != Part::Invitations {
                    // The user page is checked for the menu only.
                    continue;
                }
                assert_eq!(
                    links_to(&body, part),
                    Vec::<String>::new(),
                    "{part:?} on {at}"
                );
            }
            // The other parts still work.
            for other in PAGED.into_iter().filter(|o| *o != part) {
                let (admin, _) = probes(other);
                assert_eq!(
                    page.get(&app, admin).await.status,
                    StatusCode::OK,
                    "{other:?}"
                );
            }
        }
    })
});

both!(tags_switched_off_are_gone_from_every_way_in, |db| {
    block_on(async {
        let mut w = world_data(db);
        let tag = {
            let mut conn = db.conn();
            let t =
                frontdesk_core::tags::create(&mut conn, &frontdesk_core::Actor::system(), "vip")
                    .expect("tag");
            frontdesk_core::tags::assign(
                &mut conn,
                &frontdesk_core::Actor::system(),
                w.acme_member.id,
                t.id,
            )
            .expect("assign");
            t
        };
        for off in [false, true] {
            let b = builder(db);
            let fd = if off { b.without(Part::Tags) } else { b }
                .build()
                .expect("frontdesk");
            let app = crate::host_app!(fd);
            let (mut page, csrf) = sign_in(&app, "owner@staff.test").await;
            w.browsers
                .insert(Who::StaffOwnerSession, (page.clone(), csrf.clone()));
            let who = Who::StaffOwnerSession;
            let expect = |on: StatusCode| if off { StatusCode::NOT_FOUND } else { on };

            // API: the tag routes, the users query's tag filters, the export.
            let r = call(&app, &w, who, "GET", "/tags", None).await;
            assert_eq!(r.status, expect(StatusCode::OK), "GET /tags: {}", r.raw);
            let path = format!("/users/{}/tags/{}", w.acme_member.id, tag.id);
            let r = call(&app, &w, who, "DELETE", &path, None).await;
            assert_eq!(
                r.status,
                expect(StatusCode::NO_CONTENT),
                "{path}: {}",
                r.raw
            );
            let r = call(
                &app,
                &w,
                who,
                "GET",
                &format!("/users?tags_any={}", tag.id),
                None,
            )
            .await;
            if off {
                assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.raw);
                assert!(r.raw.contains("tags_any"), "{}", r.raw);
            } else {
                assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
            }
            let r = call(&app, &w, who, "GET", "/export?fields=email,tags", None).await;
            assert_eq!(
                r.status,
                if off {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::OK
                },
                "{}",
                r.raw
            );
            let r = call(&app, &w, who, "GET", "/export", None).await;
            assert_eq!(r.status, StatusCode::OK);
            let header = r.raw.lines().next().unwrap_or("").to_owned();
            assert_eq!(header.split(',').any(|c| c == "tags"), !off, "{header}");
            let doc = call(&app, &w, who, "GET", "/openapi.json", None).await;
            let paths = doc.body["paths"].as_object().expect("paths");
            assert_eq!(paths.contains_key("/tags"), !off);
            assert_eq!(paths.contains_key("/users/{id}/tags/{tag_id}"), !off);
            let params = doc.body["paths"]["/users"]["get"]["parameters"].to_string();
            assert_eq!(params.contains("tags_all"), !off);
            let r = call(&app, &w, who, "GET", "/import/template", None).await;
            assert_eq!(
                r.raw.lines().next().unwrap_or("").contains("tags"),
                !off,
                "{}",
                r.raw
            );

            // Pages: no filters, column, bulk action or user-page section.
            let users = page.get(&app, "/admin/users").await.body;
            assert_eq!(users.contains("name=\"tags_all\""), !off);
            assert_eq!(users.contains("value=\"add_tag\""), !off);
            assert_eq!(users.contains("<th scope=\"col\">Tags</th>"), !off);
            let user_page = page
                .get(&app, &format!("/admin/users/{}", w.acme_member.id))
                .await
                .body;
            assert_eq!(user_page.contains("<h2>Tags</h2>"), !off);
            let res = page
                .get(&app, &format!("/admin/users?tags_all={}", tag.id))
                .await;
            assert_eq!(
                res.status,
                if off {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::OK
                }
            );
            let res = page
                .post(
                    &app,
                    &format!("/admin/users/{}/tags", w.acme_member.id),
                    &[("csrf_token", &csrf), ("tag", &tag.id.to_string())],
                )
                .await;
            assert_eq!(res.status, expect(StatusCode::SEE_OTHER), "add tag");
            let res = page
                .post(
                    &app,
                    "/admin/users/bulk",
                    &[
                        ("csrf_token", &csrf),
                        ("action", "remove_tag"),
                        ("tag", &tag.id.to_string()),
                        ("ids", &w.acme_member.id.to_string()),
                    ],
                )
                .await;
            assert_eq!(res.status, expect(StatusCode::SEE_OTHER), "bulk remove tag");
        }
    })
});
