//! Checking one row: its cells, its organizations and roles, its tags.

use serde_json::{Map, Value};

use crate::authz::{can, Action, OrgRole, StaffRole, Target};
use crate::error::CoreError;
use crate::exports::{unneutralize, LIST_SEPARATOR};
use crate::organizations::{self};

use super::super::Column;
use super::super::*;
use super::*;

impl<'a> Pass<'a> {
    /// Validates one record; a valid row comes back ready to insert.
    pub(super) fn check_row(&mut self, row: u64, cells: &[&str]) -> Result<Pending, Problem> {
        let header: &'a Header = self.header;
        let width = header.columns.len();
        if cells.len() != width && !(cells.len() == 1 && cells[0].trim().is_empty()) {
            return Err((
                "field_count",
                format!(
                    "{} fields, but the header has {width} (an unquoted comma, or a missing one?)",
                    cells.len()
                ),
            ));
        }
        let get = |col: &Column| -> &str {
            let i = header.columns.iter().position(|c| c == col);
            unneutralize(i.and_then(|i| cells.get(i).copied()).unwrap_or("").trim())
        };
        for (i, col) in header.columns.iter().enumerate() {
            if let Column::Unnamed(n) = col {
                if cells.get(i).is_some_and(|c| !c.trim().is_empty()) {
                    return Err((
                        "unnamed_column",
                        format!("column {n} has a value but no name in the header"),
                    ));
                }
            }
        }
        let raw_email = get(&Column::Email);
        if raw_email.is_empty() {
            return Err(("missing_email", "email is empty".into()));
        }
        let email =
            validate::normalize_email(raw_email).map_err(|e| problem("invalid_email", e))?;
        let key = self.email_key(&email);
        if let Some(first) = self.seen.get(&key) {
            return Err((
                "duplicate_in_file",
                format!("duplicate of row {first} (emails match ignoring case)"),
            ));
        }
        self.seen
            .insert(key, u32::try_from(row).unwrap_or(u32::MAX));

        let first_name = validate::text("first_name", get(&Column::FirstName), MAX_NAME)
            .map_err(|e| problem("invalid_field", e))?;
        let last_name = validate::text("last_name", get(&Column::LastName), MAX_NAME)
            .map_err(|e| problem("invalid_field", e))?;
        let display_name = validate::text("display_name", get(&Column::DisplayName), MAX_NAME)
            .map_err(|e| problem("invalid_field", e))?;
        let display_name = Some(display_name).filter(|d| !d.is_empty());

        let memberships =
            self.check_orgs(&email, get(&Column::Organization), get(&Column::Role))?;
        if memberships.is_empty() && !can(self.actor, Action::ManageSite, &Target::Site) {
            return Err((
                "organization_required",
                "organization is empty (you may import only into your organizations)".into(),
            ));
        }

        let groups = self.check_groups(&memberships, get(&Column::Groups))?;

        let staff_role = match get(&Column::StaffRole) {
            "" => None,
            s => {
                let r = StaffRole::parse(s).ok_or_else(|| {
                    (
                        "invalid_staff_role",
                        format!("staff_role {s:?} is not one of viewer, admin, owner"),
                    )
                })?;
                if !can(self.actor, Action::GrantStaffRole, &Target::Site) {
                    return Err((
                        "staff_role_not_allowed",
                        "you may not grant staff roles".into(),
                    ));
                }
                Some(r)
            }
        };

        let mut tags = Vec::new();
        for t in get(&Column::Tags)
            .split(LIST_SEPARATOR)
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty())
        {
            if t.chars().count() > MAX_TAG || t.contains(',') || t.chars().any(char::is_control) {
                return Err(("invalid_tag", format!("tag {t:?} must be at most {MAX_TAG} characters, without ',' or control characters")));
            }
            if !self.tags.contains_key(&t) && !self.new_tags.contains(&t) {
                let found = match tags_by_name(self.conn, &t) {
                    Ok(found) => found,
                    Err(e) => return Err(self.fatal(e)),
                };
                match found {
                    Some(id) => {
                        self.tags.insert(t.clone(), id);
                    }
                    None if self.may_create_tags => {
                        self.new_tags.insert(t.clone());
                    }
                    None => return Err(("unknown_tag", format!("unknown tag {t:?}"))),
                }
            }
            if !tags.contains(&t) {
                tags.push(t);
            }
        }

        let mut profile = Map::new();
        for col in &header.columns {
            if let Column::Profile(name) = col {
                let v = get(col);
                if v.chars().count() > MAX_TEXT {
                    return Err((
                        "too_long",
                        format!("{name} is too long (at most {MAX_TEXT} characters)"),
                    ));
                }
                if !v.is_empty() {
                    profile.insert(name.clone(), Value::String(v.to_owned()));
                }
            }
        }
        // The declared fields' one check: each cell by its kind, required
        // fields present (also in update mode: a row may create the user).
        let profile = crate::profile::validate(&self.config.profile_fields, &profile)
            .map_err(|e| problem("invalid_profile_field", e))?;
        Ok(Pending {
            row,
            email,
            first_name,
            last_name,
            display_name,
            staff_role,
            profile,
            memberships,
            tags,
            groups,
        })
    }

    /// The `groups` cell: names of groups of the row's organizations
    /// (`|`-separated), each found in exactly one of them.
    fn check_groups(
        &mut self,
        memberships: &[(i64, OrgRole)],
        cell: &str,
    ) -> Result<Vec<(i64, i64, String)>, Problem> {
        let mut out: Vec<(i64, i64, String)> = Vec::new();
        for name in cell
            .split(LIST_SEPARATOR)
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            if memberships.is_empty() {
                return Err((
                    "group_without_organization",
                    "groups is set but the row has no organization".into(),
                ));
            }
            let mut found = Vec::new();
            for (org, _) in memberships {
                let key = (*org, name.to_owned());
                if !self.groups.contains_key(&key) {
                    let id = match crate::groups::by_names(self.conn, *org, &[name.to_owned()]) {
                        Ok((g, _)) => g.first().map(|g| g.id),
                        Err(e) => return Err(self.fatal(e)),
                    };
                    self.groups.insert(key.clone(), id);
                }
                if let Some(Some(id)) = self.groups.get(&key) {
                    found.push((*org, *id));
                }
            }
            let (org, id) = match found.as_slice() {
                [one] => *one,
                [] => {
                    return Err((
                        "unknown_group",
                        format!("no group {name:?} in the row's organization"),
                    ))
                }
                _ => {
                    return Err((
                        "ambiguous_group",
                        format!(
                            "several of the row's organizations have a group {name:?}: \
                             import one organization per row to name it"
                        ),
                    ))
                }
            };
            if !can(self.actor, Action::Edit, &Target::Organization(org)) {
                return Err((
                    "group_not_allowed",
                    format!("you may not change the groups of group {name:?}'s organization"),
                ));
            }
            if !out.iter().any(|(_, g, _)| *g == id) {
                out.push((org, id, name.to_owned()));
            }
        }
        Ok(out)
    }

    pub(super) fn check_orgs(
        &mut self,
        email: &str,
        orgs_cell: &str,
        roles_cell: &str,
    ) -> Result<Vec<(i64, OrgRole)>, Problem> {
        let mut slugs: Vec<String> = orgs_cell
            .split(LIST_SEPARATOR)
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if slugs.is_empty() {
            if let Some(o) = &self.default_org {
                slugs.push(o.slug.clone());
            }
        }
        let roles: Vec<&str> = roles_cell
            .split(LIST_SEPARATOR)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if slugs.is_empty() {
            if !roles.is_empty() {
                return Err((
                    "role_without_organization",
                    "role is set but organization is empty".into(),
                ));
            }
            return Ok(Vec::new());
        }
        if roles.len() > 1 && roles.len() != slugs.len() {
            return Err((
                "role_count",
                format!(
                    "{} roles for {} organizations: give one role, or one per organization",
                    roles.len(),
                    slugs.len()
                ),
            ));
        }
        let staff = self.actor.staff_role.is_some();
        let mut out = Vec::with_capacity(slugs.len());
        for (i, slug) in slugs.iter().enumerate() {
            let role_text = roles.get(i).or(roles.first()).copied().unwrap_or("member");
            let role = OrgRole::parse(role_text).ok_or_else(|| {
                (
                    "invalid_role",
                    format!("role {role_text:?} is not one of member, admin, owner"),
                )
            })?;
            if !self.orgs.contains_key(slug) {
                let found = match organizations::get_by_slug(self.conn, slug) {
                    Ok(o) => Some(o),
                    Err(CoreError::NotFound(_)) => None,
                    Err(e) => return Err(self.fatal(e)),
                };
                self.orgs.insert(slug.clone(), found);
            }
            let org = match self.orgs.get(slug).and_then(Option::as_ref) {
                // Organization admins cannot tell an unknown organization from someone else's.
                Some(o)
                    if staff
                        || can(
                            self.actor,
                            Action::ImportExport,
                            &Target::Organization(o.id),
                        ) =>
                {
                    o
                }
                _ => {
                    return Err((
                        "unknown_organization",
                        format!("unknown organization {slug:?}"),
                    ))
                }
            };
            if !org.allows_email(email) {
                return Err((
                    "domain_not_allowed",
                    format!(
                        "the email domain {} is not allowed in organization {:?} (allowed: {})",
                        validate::domain_of(email),
                        org.slug,
                        org.domains().join(", ")
                    ),
                ));
            }
            if !can(
                self.actor,
                Action::GrantOrgRole(role),
                &Target::Organization(org.id),
            ) {
                return Err((
                    "role_not_allowed",
                    format!(
                        "you may not grant the role {role} in organization {:?}",
                        org.slug
                    ),
                ));
            }
            if out.iter().any(|(o, _)| *o == org.id) {
                return Err((
                    "duplicate_organization",
                    format!("organization {:?} is listed twice", org.slug),
                ));
            }
            out.push((org.id, role));
        }
        Ok(out)
    }
}
