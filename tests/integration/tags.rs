use diesel::prelude::*;
use frontdesk_core::schema::user_tags;
use frontdesk_core::{tags, users, Actor, CoreError};

use crate::both;
use crate::users::new_user;

both!(create_assign_unassign, |db| {
    let c = &mut *db.conn();
    let sys = Actor::system();
    let vip = tags::create(c, &sys, " VIP ").expect("create");
    assert_eq!(vip.name, "vip");
    assert!(matches!(
        tags::create(c, &sys, "vip"),
        Err(CoreError::DuplicateTag(_))
    ));
    assert!(matches!(
        tags::create(c, &sys, "a|b"),
        Err(CoreError::Invalid { .. })
    ));
    let u = users::create(c, &sys, new_user("t@example.com")).expect("user");
    tags::assign(c, &sys, u.id, vip.id).expect("assign");
    tags::assign(c, &sys, u.id, vip.id).expect("assign twice is fine");
    assert_eq!(tags::tags_of(c, u.id).expect("tags").len(), 1);
    assert!(matches!(
        tags::assign(c, &sys, u.id, 9_999),
        Err(CoreError::NotFound("tag"))
    ));
    tags::unassign(c, &sys, u.id, vip.id).expect("unassign");
    let n: i64 = user_tags::table.count().get_result(c).expect("count");
    assert_eq!(n, 0);
    assert_eq!(tags::list(c).expect("list").len(), 1);
});
