//! The extension registry: what a host (or an optional part of frontdesk)
//! adds to the admin through one [`Extension`] trait: nav items, pages in the
//! admin chrome, users-list columns loaded a page at a time, users-list
//! filters run in SQL, typed profile fields, bulk actions checked by the one
//! authorization function and audited, sections of the user page, and JSON
//! routes of the admin API described in its OpenAPI document. Handlers and
//! loaders take plain data and a database connection,
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
    /// The extension's id: it names its pages (`/ext/<id>/…`), its API
    /// routes, its filters' URL parameters and its bulk actions' audit
    /// actions. Must be unique among the registered extensions.
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
    /// Routes of the admin API under `<api prefix>/ext/<id>/<path>`,
    /// authenticated like the built-in API and listed in its OpenAPI document.
    fn api_routes(&self) -> Vec<ApiRoute> {
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
    /// The link text.
    pub label: String,
    /// Where it points, below the admin prefix, with a leading `/`.
    pub path: String,
}

/// What a page handler is given: who acts, the query string or (for a POST)
/// the form, already checked for its CSRF token and origin.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// The admin opening the page, with their roles; the page's
    /// `permission` has already been checked for them.
    pub actor: Actor,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path below the extension's own prefix, without a leading `/`.
    pub path: String,
    /// The query string's pairs (`GET`) or the form's (`POST`), in order,
    /// with repeated keys kept.
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
        /// The template's name, as the extension's `templates` registers it.
        template: String,
        /// A JSON object of values for the template.
        context: serde_json::Value,
    },
    /// A 303 to `to` (a path under the admin prefix) with a flash message.
    Redirect {
        /// Where to, below the admin prefix, with a leading `/`.
        to: String,
        /// Whether the flash reads as a success (true) or an error (false).
        ok: bool,
        /// The flash message's text.
        message: String,
    },
}

/// Answers one page request. A `GET` runs on a plain connection, a `POST`
/// inside one transaction. An error with status 400 or 409 (an invalid
/// input, a conflict) sends the admin back to the page with the error as
/// a flash message; any other error is answered as is.
pub type PageHandler =
    Arc<dyn Fn(&mut DbConnection, &PageRequest) -> Result<PageResponse, CoreError> + Send + Sync>;

/// A page of the extension. `permission` is checked against the site before
/// the handler runs; a POST runs inside one transaction.
#[derive(Clone)]
pub struct AdminPage {
    /// The path below `/ext/<id>/` (empty for the extension's index).
    pub path: String,
    /// What the admin must be allowed to do on the site to open the page;
    /// a 403 otherwise.
    pub permission: Action,
    /// Answers the page's `GET` and `POST` requests.
    pub handler: PageHandler,
}

/// Loads a column's cells for one page of the users list: given the
/// page's user ids, returns the text of each user's cell by id.
pub type ColumnLoader = Arc<
    dyn Fn(&mut DbConnection, &[i64]) -> diesel::QueryResult<HashMap<i64, String>> + Send + Sync,
>;

/// A column of the users list. `load` is called once per page with the ids
/// of the page's users, never once per row; a user it leaves out shows empty.
#[derive(Clone)]
pub struct UserColumn {
    /// The column's header.
    pub label: String,
    /// Loads the column's cells, once per page.
    pub load: ColumnLoader,
}

/// Turns a filter's chosen value into a SQL condition over `users`.
pub type FilterCondition = Arc<dyn Fn(&str) -> UserCondition + Send + Sync>;

/// A filter of the users list: a labelled select whose chosen value narrows
/// the list (page, count, export and API alike) through `condition`, a SQL
/// condition over `users` with bound values, run on both backends. The URL
/// parameter is `ext.<extension id>.<name>`; `condition` is only ever called
/// with one of the `choices`' values (anything else is a 400).
#[derive(Clone)]
pub struct UserFilter {
    /// The filter's name within the extension: the last part of its URL
    /// parameter.
    pub name: String,
    /// The select's label.
    pub label: String,
    /// `(value, label)` of each option.
    pub choices: Vec<(String, String)>,
    /// The condition for the chosen value.
    pub condition: FilterCondition,
}

/// Runs a bulk action for `actor` on the selected user ids, inside the
/// transaction frontdesk opened; an error rolls back the whole action.
pub type BulkRunner =
    Arc<dyn Fn(&mut DbConnection, &Actor, &[i64]) -> Result<(), CoreError> + Send + Sync>;

/// An action on the selected users. frontdesk checks `permission` for every
/// selected user (all or nothing), runs `run` inside one transaction and
/// writes one audit row per user, `<extension id>.<name>`.
#[derive(Clone)]
pub struct BulkAction {
    /// The action's name within the extension (the audit action is
    /// `<extension id>.<name>`).
    pub name: String,
    /// The option's text in the users list's action select.
    pub label: String,
    /// What the admin must be allowed to do to every selected user.
    pub permission: Action,
    /// Does the work.
    pub run: BulkRunner,
}

/// Loads a user page section's context: given the admin and the shown
/// user's id, returns a JSON object for the section's template.
pub type SectionLoader = Arc<
    dyn Fn(&mut DbConnection, &Actor, i64) -> Result<serde_json::Value, CoreError> + Send + Sync,
>;

/// A section of the user page: `template` rendered with the context `load`
/// returns for the user shown (the page has checked the actor may view them).
#[derive(Clone)]
pub struct UserSection {
    /// The section's heading.
    pub title: String,
    /// The template's name, as the extension's `templates` registers it.
    /// It gets the loaded context plus the shared values (`site_name`,
    /// `admin_prefix`, `csrf_token`, `user_id`).
    pub template: String,
    /// Loads the section's context each time the page is shown.
    pub load: SectionLoader,
}

/// The HTTP method of an [`ApiRoute`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiMethod {
    /// `GET`: reads; runs on a plain connection.
    Get,
    /// `POST`; runs inside one transaction, like every method but `GET`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl ApiMethod {
    /// Upper case, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiMethod::Get => "GET",
            ApiMethod::Post => "POST",
            ApiMethod::Put => "PUT",
            ApiMethod::Patch => "PATCH",
            ApiMethod::Delete => "DELETE",
        }
    }

    pub(crate) fn parse(method: &str) -> Option<ApiMethod> {
        Some(match method {
            "GET" => ApiMethod::Get,
            "POST" => ApiMethod::Post,
            "PUT" => ApiMethod::Put,
            "PATCH" => ApiMethod::Patch,
            "DELETE" => ApiMethod::Delete,
            _ => return None,
        })
    }
}

/// What an API route's `permission` is checked against before its handler
/// runs, by frontdesk's one authorization function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiTarget {
    /// The admin as a whole (like an extension page): refused with 403.
    Site,
    /// The user whose id is the path parameter of this name (`id` for
    /// `users/{id}/notes`): a user the caller may not see, or an id that is
    /// not a number, is 404; one they may see but not act on is 403, as on
    /// the built-in `/users/{id}` routes.
    User(String),
}

/// What an API handler is given: who acts, the path parameters, the query
/// and (for a route with a `request` schema) the JSON body.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// The caller (an API key's or a signed-in admin's roles), already
    /// checked against the route's `permission`.
    pub actor: Actor,
    /// The method the route was called with.
    pub method: ApiMethod,
    /// Each `{name}` of the route's path with the segment it matched.
    pub params: Vec<(String, String)>,
    /// The query string's pairs, in order (empty when it does not parse).
    pub query: Vec<(String, String)>,
    /// The body, when the route takes one (already known to be JSON).
    pub body: Option<serde_json::Value>,
    /// The user an [`ApiTarget::User`] route names, already checked.
    pub user_id: Option<i64>,
}

impl ApiRequest {
    /// The path parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as `T` (use `#[serde(deny_unknown_fields)]` to refuse
    /// fields the schema does not list); a body that does not fit is a 400.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, CoreError> {
        let body = self.body.clone().ok_or(CoreError::Invalid {
            field: "body",
            reason: "a JSON body is required".into(),
        })?;
        if !body.is_object() {
            return Err(CoreError::Invalid {
                field: "body",
                reason: "must be a JSON object".into(),
            });
        }
        serde_json::from_value(body).map_err(|e| CoreError::Invalid {
            field: "body",
            reason: e.to_string(),
        })
    }
}

/// Answers one API request with the success body (a JSON value); a
/// [`CoreError`] becomes a problem+json answer.
pub type ApiHandler = Arc<
    dyn Fn(&mut DbConnection, &ApiRequest) -> Result<serde_json::Value, CoreError> + Send + Sync,
>;

/// A JSON route of the admin API. The caller authenticates as on the
/// built-in API (an API key, or an admin's session plus the CSRF header on
/// unsafe methods); `permission` is checked against `target`; a GET runs on
/// a plain connection, any other method inside one transaction; errors are
/// problem+json (a [`CoreError`] maps as on the built-in routes).
#[derive(Clone)]
pub struct ApiRoute {
    /// The method the route answers; another method on the same path is a
    /// 405 naming the allowed ones.
    pub method: ApiMethod,
    /// Below `/ext/<id>/`, with `{name}` for a path parameter (one segment).
    pub path: String,
    /// One line for the OpenAPI document.
    pub summary: String,
    /// What the caller must be allowed to do on `target`.
    pub permission: Action,
    /// What `permission` is checked against: the site or a user.
    pub target: ApiTarget,
    /// JSON Schema of each path parameter by name; one not listed is a
    /// string (the [`ApiTarget::User`] parameter is an int64).
    pub params: Vec<(String, serde_json::Value)>,
    /// JSON Schema of the body; `None` for a route without one.
    pub request: Option<serde_json::Value>,
    /// The status of a success (200, or 201 for a creation) and the JSON
    /// Schema of its body.
    pub status: u16,
    /// JSON Schema of the success body, for the OpenAPI document.
    pub response: serde_json::Value,
    /// Answers the route's requests.
    pub handler: ApiHandler,
}

impl ApiRoute {
    /// The parameters a request path matches with, or `None`.
    pub(crate) fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let want: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        let got: Vec<&str> = path.trim_matches('/').split('/').collect();
        if want.len() != got.len() {
            return None;
        }
        let mut params = Vec::new();
        for (w, g) in want.iter().zip(&got) {
            match w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                Some(name) if !g.is_empty() => params.push((name.to_owned(), (*g).to_owned())),
                Some(_) => return None,
                None if w == g => {}
                None => return None,
            }
        }
        Some(params)
    }
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
    api: Vec<ApiRoute>,
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
        let api = ext.api_routes();
        for (i, r) in api.iter().enumerate() {
            if let ApiTarget::User(name) = &r.target {
                if !r.path.split('/').any(|seg| seg == format!("{{{name}}}")) {
                    return Err(CoreError::Config(format!(
                        "extension {id:?}: route {} has no {{{name}}} parameter",
                        r.path
                    )));
                }
            }
            let same = |o: &ApiRoute| {
                o.method == r.method && o.path.trim_matches('/') == r.path.trim_matches('/')
            };
            if api[..i].iter().any(same) {
                return Err(CoreError::Config(format!(
                    "extension {id:?}: {} {} is declared twice",
                    r.method.as_str(),
                    r.path
                )));
            }
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
            api,
            templates: ext.templates(),
        });
        Ok(())
    }

    pub(crate) fn nav(&self) -> Vec<NavItem> {
        self.entries.iter().flat_map(|e| e.nav.clone()).collect()
    }

    pub(crate) fn page(&self, id: &str, path: &str) -> Option<&AdminPage> {
        self.entries
            .iter()
            .find(|e| e.id == id)?
            .pages
            .iter()
            .find(|p| p.path.trim_matches('/') == path.trim_matches('/'))
    }

    pub(crate) fn columns(&self) -> Vec<UserColumn> {
        self.entries
            .iter()
            .flat_map(|e| e.columns.clone())
            .collect()
    }

    /// Each filter with its URL parameter, `ext.<id>.<name>`.
    pub(crate) fn filters(&self) -> Vec<(String, UserFilter)> {
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
    pub(crate) fn bulk_actions(&self) -> Vec<(String, BulkAction)> {
        self.entries
            .iter()
            .flat_map(|e| {
                e.bulk
                    .iter()
                    .map(|b| (format!("{}.{}", e.id, b.name), b.clone()))
            })
            .collect()
    }

    pub(crate) fn bulk_action(&self, key: &str) -> Option<BulkAction> {
        self.bulk_actions()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, b)| b)
    }

    pub(crate) fn sections(&self) -> Vec<UserSection> {
        self.entries
            .iter()
            .flat_map(|e| e.sections.clone())
            .collect()
    }

    /// Every API route with its extension's id.
    pub(crate) fn api_routes(&self) -> Vec<(&'static str, ApiRoute)> {
        self.entries
            .iter()
            .flat_map(|e| e.api.iter().map(move |r| (e.id, r.clone())))
            .collect()
    }

    /// The routes of extension `id` whose path matches `path`, each with its
    /// parameters (one per method at most).
    pub(crate) fn api_matches(
        &self,
        id: &str,
        path: &str,
    ) -> Vec<(ApiRoute, Vec<(String, String)>)> {
        self.entries
            .iter()
            .filter(|e| e.id == id)
            .flat_map(|e| e.api.iter())
            .filter_map(|r| r.matches(path).map(|p| (r.clone(), p)))
            .collect()
    }

    pub(crate) fn templates(&self) -> Vec<(&'static str, &'static str)> {
        self.entries
            .iter()
            .flat_map(|e| e.templates.clone())
            .collect()
    }
}

/// Runs an extension's bulk action: every selected user must allow
/// `permission` to `actor` (one refusal changes no one), then the action and
/// one audit row per user, all in one transaction.
pub(crate) fn run_bulk(
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
