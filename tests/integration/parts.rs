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
    }
}

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
        for part in Part::ALL {
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

        for part in Part::ALL {
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
            for other in Part::ALL.into_iter().filter(|o| *o != part) {
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
