//! A condition on `users` written as SQL with bound parameters: what a
//! profile filter or a host's extension filter adds to the users query, for
//! the page and the count alike. The SQL text is the host's (or frontdesk's)
//! own constant; values only ever travel as bound parameters.

use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::QueryResult;

use crate::db::Backend;
use crate::schema::users;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Sql(String),
    Text(String),
    Int(i64),
}

/// A boolean SQL expression over the `users` table (refer to it as
/// `users.id`, `users.profile`, …), built from SQL text and bound values:
///
/// ```
/// # use frontdesk_core::users::condition::UserCondition;
/// let c = UserCondition::sql("users.id IN (SELECT user_id FROM notes WHERE kind = ")
///     .bind_text("call")
///     .push(")");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCondition {
    pieces: Vec<Piece>,
}

impl UserCondition {
    /// Starts with SQL text. Never build it from user input: pass values
    /// through [`UserCondition::bind_text`] or [`UserCondition::bind_int`].
    pub fn sql(text: &str) -> Self {
        UserCondition {
            pieces: vec![Piece::Sql(text.to_owned())],
        }
    }

    /// More SQL text.
    pub fn push(mut self, text: &str) -> Self {
        self.pieces.push(Piece::Sql(text.to_owned()));
        self
    }

    /// A bound text value.
    pub fn bind_text(mut self, value: impl Into<String>) -> Self {
        self.pieces.push(Piece::Text(value.into()));
        self
    }

    /// A bound integer value.
    pub fn bind_int(mut self, value: i64) -> Self {
        self.pieces.push(Piece::Int(value));
        self
    }
}

impl Expression for UserCondition {
    type SqlType = Bool;
}

impl QueryId for UserCondition {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl ValidGrouping<()> for UserCondition {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl AppearsOnTable<users::table> for UserCondition {}
impl SelectableExpression<users::table> for UserCondition {}

impl QueryFragment<Backend> for UserCondition {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Backend>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("(");
        for p in &self.pieces {
            match p {
                Piece::Sql(s) => out.push_sql(s),
                Piece::Text(v) => out.push_bind_param::<Text, String>(v)?,
                Piece::Int(v) => out.push_bind_param::<BigInt, i64>(v)?,
            }
        }
        out.push_sql(")");
        Ok(())
    }
}
