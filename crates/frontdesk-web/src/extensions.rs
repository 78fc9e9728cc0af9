//! The extension registry: what a host (or an optional part of frontdesk)
//! adds to the admin through one [`Extension`] trait: nav items, pages in the
//! admin chrome, users-list columns loaded a page at a time, users-list
//! filters run in SQL, typed profile fields, bulk actions checked by the one
//! authorization function and audited, and sections of the user page. Handlers and loaders take plain data and a database connection,
//! never actix types, and answer with a template name and a JSON context.

use std::collections::HashMap;
use std::sync::Arc;

use frontdesk_core::db::DbConnection;
use frontdesk_core::profile::ProfileField;
use frontdesk_core::users::condition::UserCondition;
use frontdesk_core::{Action, Actor, CoreError};
use serde::Serialize;

/// One extension: an id (lowercase letters, digits, `-` and `_`) and the
/// extension points it fills. Every method but `id` defaults to nothing.
pub trait Extension: Send + Sync + 'static {
    fn id(&self) -> &'static str;
    /// Links added to the admin menu.
    fn nav(&self) -> Vec<NavItem> {
        vec![]
    }
    /// Pages under `<admin prefix>/ext/<id>/<path>`.
    fn pages(&self) -> Vec<AdminPage> {
        vec![]
    }
    /// Columns of the users list.
    fn user_columns(&self) -> Vec<UserColumn> {
        vec![]
    }
    /// Filters of the users list (a select each), run in SQL.
    fn user_filters(&self) -> Vec<UserFilter> {
        vec![]
    }
    /// Typed profile fields, added to the host's own
    /// (`FrontdeskBuilder::profile_field`).
    fn profile_fields(&self) -> Vec<ProfileField> {
        vec![]
    }
    /// Actions offered on the selected rows of the users list.
    fn bulk_actions(&self) -> Vec<BulkAction> {
        vec![]
    }
    /// Sections of the user page.
    fn user_sections(&self) -> Vec<UserSection> {
        vec![]
    }
    /// Templates the pages and sections render, by name (a file of the same
    /// name in the host's template folder wins).
    fn templates(&self) -> Vec<(&'static str, &'static str)> {
        vec![]
    }
}

/// A link in the admin menu, to `path` under the admin prefix (for example
/// `/ext/notes/`).
#[derive(Debug, Clone, Serialize)]
pub struct NavItem {
    pub label: String,
    pub path: String,
}

/// What a page handler is given: who acts, the query string or (for a POST)
/// the form, already checked for its CSRF token and origin.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub actor: Actor,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path below the extension's own prefix, without a leading `/`.
    pub path: String,
    pub params: Vec<(String, String)>,
}

impl PageRequest {
    /// The first non-empty value of `key`, trimmed.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
    }
}

/// What a page handler answers.
pub enum PageResponse {
    /// Renders `template` inside the admin chrome (it extends
    /// `admin/base.html`) with `context` added to the shared one.
    Render {
        template: String,
        context: serde_json::Value,
    },
    /// A 303 to `to` (a path under the admin prefix) with a flash message.
    Redirect {
        to: String,
        ok: bool,
        message: String,
    },
}

pub type PageHandler =
    Arc<dyn Fn(&mut DbConnection, &PageRequest) -> Result<PageResponse, CoreError> + Send + Sync>;

/// A page of the extension. `permission` is checked against the site before
/// the handler runs; a POST runs inside one transaction.
#[derive(Clone)]
pub struct AdminPage {
    /// The path below `/ext/<id>/` (empty for the extension's index).
    pub path: String,
    pub permission: Action,
    pub handler: PageHandler,
}

pub type ColumnLoader = Arc<
    dyn Fn(&mut DbConnection, &[i64]) -> diesel::QueryResult<HashMap<i64, String>> + Send + Sync,
>;

/// A column of the users list. `load` is called once per page with the ids
/// of the page's users, never once per row; a user it leaves out shows empty.
#[derive(Clone)]
pub struct UserColumn {
    pub label: String,
    pub load: ColumnLoader,
}

pub type FilterCondition = Arc<dyn Fn(&str) -> UserCondition + Send + Sync>;

/// A filter of the users list: a labelled select whose chosen value narrows
/// the list (page, count, export and API alike) through `condition`, a SQL
/// condition over `users` with bound values, run on both backends. The URL
/// parameter is `ext.<extension id>.<name>`; `condition` is only ever called
/// with one of the `choices`' values (anything else is a 400).
#[derive(Clone)]
pub struct UserFilter {
    pub name: String,
    pub label: String,
    /// `(value, label)` of each option.
    pub choices: Vec<(String, String)>,
    pub condition: FilterCondition,
}

pub type BulkRunner =
    Arc<dyn Fn(&mut DbConnection, &Actor, &[i64]) -> Result<(), CoreError> + Send + Sync>;

/// An action on the selected users. frontdesk checks `permission` for every
/// selected user (all or nothing), runs `run` inside one transaction and
/// writes one audit row per user, `<extension id>.<name>`.
#[derive(Clone)]
pub struct BulkAction {
    pub name: String,
    pub label: String,
    pub permission: Action,
    pub run: BulkRunner,
}

pub type SectionLoader = Arc<
    dyn Fn(&mut DbConnection, &Actor, i64) -> Result<serde_json::Value, CoreError> + Send + Sync,
>;

/// A section of the user page: `template` rendered with the context `load`
/// returns for the user shown (the page has checked the actor may view them).
#[derive(Clone)]
pub struct UserSection {
    pub title: String,
    pub template: String,
    pub load: SectionLoader,
}

/// Every registered extension, with its parts collected once at start.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Vec<Entry>,
}

#[derive(Clone)]
struct Entry {
    id: &'static str,
    nav: Vec<NavItem>,
    pages: Vec<AdminPage>,
    columns: Vec<UserColumn>,
    filters: Vec<UserFilter>,
    profile_fields: Vec<ProfileField>,
    bulk: Vec<BulkAction>,
    sections: Vec<UserSection>,
    templates: Vec<(&'static str, &'static str)>,
}

impl Registry {
    /// Adds an extension; an id of the wrong shape or one already taken is
    /// refused.
    pub fn add(&mut self, ext: &dyn Extension) -> Result<(), CoreError> {
        let id = ext.id();
        let good = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !good {
            return Err(CoreError::Config(format!(
                "extension id {id:?} must be lowercase letters, digits, - or _"
            )));
        }
        if self.entries.iter().any(|e| e.id == id) {
            return Err(CoreError::Config(format!(
                "extension {id:?} is registered twice"
            )));
        }
        self.entries.push(Entry {
            id,
            nav: ext.nav(),
            pages: ext.pages(),
            columns: ext.user_columns(),
            filters: ext.user_filters(),
            profile_fields: ext.profile_fields(),
            bulk: ext.bulk_actions(),
            sections: ext.user_sections(),
            templates: ext.templates(),
        });
        Ok(())
    }

    pub fn nav(&self) -> Vec<NavItem> {
        self.entries.iter().flat_map(|e| e.nav.clone()).collect()
    }

    pub fn page(&self, id: &str, path: &str) -> Option<&AdminPage> {
        self.entries
            .iter()
            .find(|e| e.id == id)?
            .pages
            .iter()
            .find(|p| p.path.trim_matches('/') == path.trim_matches('/'))
    }

    pub fn columns(&self) -> Vec<UserColumn> {
        self.entries
            .iter()
            .flat_map(|e| e.columns.clone())
            .collect()
    }

    /// Each filter with its URL parameter, `ext.<id>.<name>`.
    pub fn filters(&self) -> Vec<(String, UserFilter)> {
        self.entries
            .iter()
            .flat_map(|e| {
                e.filters
                    .iter()
                    .map(|f| (format!("ext.{}.{}", e.id, f.name), f.clone()))
            })
            .collect()
    }

    /// The extensions' typed profile fields.
    pub fn profile_fields(&self) -> Vec<ProfileField> {
        self.entries
            .iter()
            .flat_map(|e| e.profile_fields.clone())
            .collect()
    }

    /// Each bulk action with the value its `<option>` carries: `<id>.<name>`.
    pub fn bulk_actions(&self) -> Vec<(String, BulkAction)> {
        self.entries
            .iter()
            .flat_map(|e| {
                e.bulk
                    .iter()
                    .map(|b| (format!("{}.{}", e.id, b.name), b.clone()))
            })
            .collect()
    }

    pub fn bulk_action(&self, key: &str) -> Option<BulkAction> {
        self.bulk_actions()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, b)| b)
    }

    pub fn sections(&self) -> Vec<UserSection> {
        self.entries
            .iter()
            .flat_map(|e| e.sections.clone())
            .collect()
    }

    pub fn templates(&self) -> Vec<(&'static str, &'static str)> {
        self.entries
            .iter()
            .flat_map(|e| e.templates.clone())
            .collect()
    }
}

/// Runs an extension's bulk action: every selected user must allow
/// `permission` to `actor` (one refusal changes no one), then the action and
/// one audit row per user, all in one transaction.
pub fn run_bulk(
    conn: &mut DbConnection,
    actor: &Actor,
    key: &str,
    action: &BulkAction,
    ids: &[i64],
) -> Result<(), CoreError> {
    frontdesk_core::db::write_transaction(conn, |conn| {
        for &id in ids {
            frontdesk_core::users::get_for(conn, actor, id, action.permission)?;
        }
        (action.run)(conn, actor, ids)?;
        for &id in ids {
            frontdesk_core::audit::record(
                conn,
                actor,
                key,
                &format!("user:{id}"),
                None,
                serde_json::json!({}),
            )?;
        }
        Ok(())
    })
}
