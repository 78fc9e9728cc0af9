//! SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2): a small
//! recursive-descent parser into [`Filter`] / [`PatchPath`], and evaluation
//! against a resource's JSON form.
//!
//! ```text
//! filter   = or
//! or       = and *("or" and)
//! and      = unary *("and" unary)
//! unary    = "not" "(" filter ")" / "(" filter ")" / atom
//! atom     = attrPath "[" filter "]"            ; valuePath
//!          / attrPath "pr"
//!          / attrPath compareOp compValue
//! attrPath = [URN ":"] name ["." name]
//! ```

use serde_json::Value;

/// An attribute named in a filter or path: `name.sub`, any schema URN
/// already stripped. Names compare case-insensitively (RFC 7643 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The attribute's name (`emails`, `userName`).
    pub name: String,
    /// The sub-attribute after a dot (`value` in `emails.value`), if any.
    pub sub: Option<String>,
}

/// A comparison operator of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `eq`: equal.
    Eq,
    /// `ne`: not equal.
    Ne,
    /// `co`: contains (text).
    Co,
    /// `sw`: starts with (text).
    Sw,
    /// `ew`: ends with (text).
    Ew,
    /// `gt`: greater than.
    Gt,
    /// `ge`: greater than or equal.
    Ge,
    /// `lt`: less than.
    Lt,
    /// `le`: less than or equal.
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }
}

/// A parsed SCIM filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attr op value`.
    Compare(AttrPath, CompareOp, Value),
    /// `attr pr`: the attribute is present and not empty.
    Present(AttrPath),
    /// Both filters match.
    And(Box<Filter>, Box<Filter>),
    /// Either filter matches.
    Or(Box<Filter>, Box<Filter>),
    /// The filter does not match.
    Not(Box<Filter>),
    /// `emails[type eq "work"]`: some element of the multi-valued attribute
    /// matches the inner filter (whose paths are relative to the element).
    ValuePath(AttrPath, Box<Filter>),
}

/// A PATCH operation's target: an attribute, optionally narrowed to the
/// elements a filter selects, optionally a sub-attribute of those.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute to change.
    pub attr: AttrPath,
    /// The filter that selects the elements of a multi-valued attribute.
    pub filter: Option<Filter>,
    /// `emails[type eq "work"].value`: the sub-attribute after the filter.
    pub sub_after_filter: Option<String>,
}

/// Why a filter or path does not parse, for the `invalidFilter` or
/// `invalidPath` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(f64),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Dot,
}

fn lex(input: &str) -> Result<Vec<Tok>, ParseError> {
    let mut out = Vec::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            '[' => {
                out.push(Tok::LBracket);
                i += 1
            }
            ']' => {
                out.push(Tok::RBracket);
                i += 1
            }
            '"' => {
                // A JSON string, escapes included.
                let start = i;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(ParseError("unterminated string".into()));
                }
                i += 1;
                let raw: String = chars[start..i].iter().collect();
                let s: String = serde_json::from_str(&raw)
                    .map_err(|_| ParseError(format!("bad string {raw}")))?;
                out.push(Tok::Str(s));
            }
            c if c == '-' || c.is_ascii_digit() => {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_digit()
                        || matches!(chars[i], '.' | 'e' | 'E' | '+' | '-'))
                {
                    i += 1;
                }
                let raw: String = chars[start..i].iter().collect();
                let n = raw
                    .parse::<f64>()
                    .map_err(|_| ParseError(format!("bad number {raw}")))?;
                out.push(Tok::Num(n));
            }
            c if c.is_ascii_alphabetic() || c == '$' || c == '_' => {
                // A word; a URN keeps its colons and dots until the last
                // colon (`urn:…:User:name.givenName`).
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || matches!(chars[i], '$' | '_' | '-' | ':' | '.'))
                {
                    i += 1;
                }
                let raw: String = chars[start..i].iter().collect();
                let (urn, rest) = match raw.rfind(':') {
                    Some(p) => (true, raw[p + 1..].to_owned()),
                    None => (false, raw),
                };
                let _ = urn;
                let mut parts = rest.split('.').peekable();
                let mut first = true;
                while let Some(p) = parts.next() {
                    if !first {
                        out.push(Tok::Dot);
                    }
                    first = false;
                    if p.is_empty() && parts.peek().is_some() {
                        return Err(ParseError(format!("bad attribute path {rest}")));
                    }
                    if !p.is_empty() {
                        out.push(Tok::Word(p.to_owned()));
                    }
                }
            }
            '.' => {
                out.push(Tok::Dot);
                i += 1
            }
            other => return Err(ParseError(format!("unexpected character {other:?}"))),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn expect(&mut self, t: Tok) -> Result<(), ParseError> {
        match self.next() {
            Some(got) if got == t => Ok(()),
            got => Err(ParseError(format!("expected {t:?}, found {got:?}"))),
        }
    }

    fn or(&mut self) -> Result<Filter, ParseError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, ParseError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, ParseError> {
        if self.keyword("not") && self.toks.get(self.pos + 1) == Some(&Tok::LParen) {
            self.pos += 2;
            let f = self.or()?;
            self.expect(Tok::RParen)?;
            return Ok(Filter::Not(Box::new(f)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let f = self.or()?;
            self.expect(Tok::RParen)?;
            return Ok(f);
        }
        self.atom()
    }

    fn attr_path(&mut self) -> Result<AttrPath, ParseError> {
        let name = match self.next() {
            Some(Tok::Word(w)) => w,
            got => return Err(ParseError(format!("expected an attribute, found {got:?}"))),
        };
        let sub = if self.peek() == Some(&Tok::Dot) {
            self.pos += 1;
            match self.next() {
                Some(Tok::Word(w)) => Some(w),
                got => {
                    return Err(ParseError(format!(
                        "expected a sub-attribute, found {got:?}"
                    )))
                }
            }
        } else {
            None
        };
        Ok(AttrPath { name, sub })
    }

    fn atom(&mut self) -> Result<Filter, ParseError> {
        let path = self.attr_path()?;
        if self.peek() == Some(&Tok::LBracket) {
            self.pos += 1;
            let inner = self.or()?;
            self.expect(Tok::RBracket)?;
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        if self.keyword("pr") {
            self.pos += 1;
            return Ok(Filter::Present(path));
        }
        let op = match self.next() {
            Some(Tok::Word(w)) => {
                CompareOp::parse(&w).ok_or_else(|| ParseError(format!("unknown operator {w:?}")))?
            }
            got => return Err(ParseError(format!("expected an operator, found {got:?}"))),
        };
        let value = match self.next() {
            Some(Tok::Str(s)) => Value::String(s),
            Some(Tok::Num(n)) => serde_json::Number::from_f64(n)
                .map(Value::Number)
                .ok_or_else(|| ParseError("bad number".into()))?,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Value::Null,
            got => return Err(ParseError(format!("expected a value, found {got:?}"))),
        };
        Ok(Filter::Compare(path, op, value))
    }
}

/// Parses a `filter` query parameter.
pub fn parse(input: &str) -> Result<Filter, ParseError> {
    let mut p = Parser {
        toks: lex(input)?,
        pos: 0,
    };
    let f = p.or()?;
    if p.pos != p.toks.len() {
        return Err(ParseError(format!(
            "unexpected {:?} after the filter",
            p.toks[p.pos]
        )));
    }
    Ok(f)
}

/// Parses a PATCH operation's `path`.
pub fn parse_path(input: &str) -> Result<PatchPath, ParseError> {
    let mut p = Parser {
        toks: lex(input)?,
        pos: 0,
    };
    let attr = p.attr_path()?;
    let mut filter = None;
    let mut sub_after_filter = None;
    if p.peek() == Some(&Tok::LBracket) {
        if attr.sub.is_some() {
            return Err(ParseError(
                "a filter follows an attribute, not a sub-attribute".into(),
            ));
        }
        p.pos += 1;
        filter = Some(p.or()?);
        p.expect(Tok::RBracket)?;
        if p.peek() == Some(&Tok::Dot) {
            p.pos += 1;
            match p.next() {
                Some(Tok::Word(w)) => sub_after_filter = Some(w),
                got => {
                    return Err(ParseError(format!(
                        "expected a sub-attribute, found {got:?}"
                    )))
                }
            }
        }
    }
    if p.pos != p.toks.len() {
        return Err(ParseError(format!(
            "unexpected {:?} in the path",
            p.toks[p.pos]
        )));
    }
    Ok(PatchPath {
        attr,
        filter,
        sub_after_filter,
    })
}

/// The value of `key` in a JSON object, the key compared case-insensitively.
pub fn get_ci<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Attributes whose values compare case-sensitively (RFC 7643: `caseExact`).
fn case_exact(path: &AttrPath) -> bool {
    let n = path.name.to_ascii_lowercase();
    matches!(n.as_str(), "id" | "externalid")
        || (n == "members"
            && path
                .sub
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case("value")))
}

/// The values a path names in a resource: several for a multi-valued
/// attribute (a complex element without a sub-attribute stands for its
/// `value`).
fn values_at<'a>(resource: &'a Value, path: &AttrPath) -> Vec<&'a Value> {
    let Some(v) = get_ci(resource, &path.name) else {
        return Vec::new();
    };
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    };
    items
        .into_iter()
        .filter_map(|item| match (&path.sub, item) {
            (Some(sub), _) => get_ci(item, sub),
            (None, Value::Object(_)) => get_ci(item, "value"),
            (None, other) => Some(other),
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn compare(actual: &Value, op: CompareOp, expected: &Value, exact: bool) -> bool {
    use std::cmp::Ordering;
    let fold = |s: &str| {
        if exact {
            s.to_owned()
        } else {
            s.to_lowercase()
        }
    };
    match (actual, expected) {
        (Value::String(a), Value::String(e)) => {
            let (a, e) = (fold(a), fold(e));
            match op {
                CompareOp::Eq => a == e,
                CompareOp::Ne => a != e,
                CompareOp::Co => a.contains(&e),
                CompareOp::Sw => a.starts_with(&e),
                CompareOp::Ew => a.ends_with(&e),
                CompareOp::Gt => a > e,
                CompareOp::Ge => a >= e,
                CompareOp::Lt => a < e,
                CompareOp::Le => a <= e,
            }
        }
        (Value::Bool(a), Value::Bool(e)) => match op {
            CompareOp::Eq => a == e,
            CompareOp::Ne => a != e,
            _ => false,
        },
        (Value::Number(a), Value::Number(e)) => {
            let (Some(a), Some(e)) = (a.as_f64(), e.as_f64()) else {
                return false;
            };
            let ord = a.partial_cmp(&e);
            match op {
                CompareOp::Eq => ord == Some(Ordering::Equal),
                CompareOp::Ne => ord != Some(Ordering::Equal),
                CompareOp::Gt => ord == Some(Ordering::Greater),
                CompareOp::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
                CompareOp::Lt => ord == Some(Ordering::Less),
                CompareOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                _ => false,
            }
        }
        _ => false,
    }
}

impl Filter {
    /// Whether `resource` (a resource's JSON form) matches.
    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Filter::Present(path) => values_at(resource, path)
                .iter()
                .any(|v| !matches!(v, Value::String(s) if s.is_empty())),
            Filter::Compare(path, op, expected) => {
                let values = values_at(resource, path);
                if expected.is_null() {
                    // `eq null` is "not present", `ne null` is "present".
                    return match op {
                        CompareOp::Eq => values.is_empty(),
                        CompareOp::Ne => !values.is_empty(),
                        _ => false,
                    };
                }
                let exact = case_exact(path);
                values.iter().any(|v| compare(v, *op, expected, exact))
            }
            Filter::And(a, b) => a.matches(resource) && b.matches(resource),
            Filter::Or(a, b) => a.matches(resource) || b.matches(resource),
            Filter::Not(f) => !f.matches(resource),
            Filter::ValuePath(path, inner) => match get_ci(resource, &path.name) {
                Some(Value::Array(items)) => items.iter().any(|i| inner.matches(i)),
                Some(v @ Value::Object(_)) => inner.matches(v),
                _ => false,
            },
        }
    }

    /// `attr eq "value"` on a top-level attribute: the value, for a lookup
    /// by index instead of a scan.
    pub fn as_equality(&self) -> Option<(&str, &str)> {
        match self {
            Filter::Compare(AttrPath { name, sub: None }, CompareOp::Eq, Value::String(v)) => {
                Some((name.as_str(), v.as_str()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "id": "42",
            "userName": "Ada@Example.com",
            "externalId": "AbC",
            "displayName": "Ada Lovelace",
            "active": true,
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [
                {"value": "ada@example.com", "type": "work", "primary": true},
                {"value": "ada@home.test", "type": "home"}
            ],
            "members": [{"value": "7"}, {"value": "9"}]
        })
    }

    fn m(f: &str) -> bool {
        parse(f).expect(f).matches(&user())
    }

    #[test]
    fn the_operators_directories_send() {
        assert!(m(r#"userName eq "ada@example.com""#));
        assert!(m(r#"USERNAME Eq "ADA@EXAMPLE.COM""#));
        assert!(!m(r#"externalId eq "abc""#), "externalId is caseExact");
        assert!(m(r#"externalId eq "AbC""#));
        assert!(m(r#"displayName co "love""#));
        assert!(m(r#"displayName sw "ada""#));
        assert!(m(r#"displayName ew "lace""#));
        assert!(m("active eq true"));
        assert!(!m("active eq false"));
        assert!(m("name.givenName pr"));
        assert!(!m("title pr"));
        assert!(m(r#"emails eq "ada@home.test""#));
        assert!(m(r#"emails.value eq "ada@home.test""#));
        assert!(m(r#"emails[type eq "work" and value co "example"]"#));
        assert!(!m(r#"emails[type eq "home" and value co "example"]"#));
        assert!(m(r#"members eq "9""#));
        assert!(m(r#"members[value eq "7"]"#));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "ada@example.com""#
        ));
        assert!(m(
            r#"userName eq "x" or (active eq true and not (displayName eq "y"))"#
        ));
        assert!(!m(r#"userName eq "x" or active eq false"#));
        assert!(m(r#"title eq null"#));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // false and true or true = (false and true) or true = true
        assert!(m(r#"active eq false and active eq true or active eq true"#));
        // true or true and false = true or (true and false) = true
        assert!(m(r#"active eq true or active eq true and active eq false"#));
        assert!(!m(
            r#"(active eq true or active eq true) and active eq false"#
        ));
    }

    #[test]
    fn malformed_filters_are_refused() {
        for bad in [
            "",
            "userName",
            r#"userName eq"#,
            r#"userName zz "a""#,
            r#"userName eq "a" and"#,
            r#"(userName eq "a""#,
            r#"userName eq "a")"#,
            r#"emails[type eq "work""#,
            r#"userName eq "unterminated"#,
            "userName eq 'single'",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn patch_paths_in_the_forms_entra_and_okta_send() {
        let p = parse_path(r#"emails[type eq "work"].value"#).expect("path");
        assert_eq!(p.attr.name, "emails");
        assert_eq!(p.sub_after_filter.as_deref(), Some("value"));
        let p = parse_path("name.givenName").expect("path");
        assert_eq!(p.attr.sub.as_deref(), Some("givenName"));
        let p = parse_path(r#"members[value eq "12"]"#).expect("path");
        assert!(p.filter.expect("filter").matches(&json!({"value": "12"})));
        let p =
            parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber")
                .expect("path");
        assert_eq!(p.attr.name, "employeeNumber");
        assert!(parse_path("emails[").is_err());
        assert!(parse_path("a b").is_err());
    }

    fn word() -> BoxedStrategy<String> {
        "[a-z][a-zA-Z0-9]{0,8}"
            .prop_filter("not a keyword", |w| {
                ![
                    "and", "or", "not", "pr", "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le",
                    "true", "false", "null",
                ]
                .contains(&w.to_ascii_lowercase().as_str())
            })
            .boxed()
    }

    fn leaf() -> impl Strategy<Value = Filter> {
        let op = prop_oneof![
            Just(CompareOp::Eq),
            Just(CompareOp::Ne),
            Just(CompareOp::Co),
            Just(CompareOp::Sw),
            Just(CompareOp::Ew),
            Just(CompareOp::Gt),
            Just(CompareOp::Le),
        ];
        let value = prop_oneof![
            any::<String>().prop_map(Value::String),
            any::<bool>().prop_map(Value::Bool),
            (-1000i64..1000).prop_map(|n| json!(n as f64)),
        ];
        let path = (word(), proptest::option::of(word()))
            .prop_map(|(name, sub)| AttrPath { name, sub })
            .boxed();
        prop_oneof![
            (path.clone(), op, value).prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
            path.prop_map(Filter::Present),
        ]
    }

    fn filter() -> impl Strategy<Value = Filter> {
        leaf().prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                inner.clone().prop_map(|f| Filter::Not(Box::new(f))),
                (word(), inner).prop_map(|(n, f)| Filter::ValuePath(
                    AttrPath { name: n, sub: None },
                    Box::new(f)
                )),
            ]
        })
    }

    /// Writes a filter back as text, fully parenthesised.
    fn show(f: &Filter) -> String {
        let path = |p: &AttrPath| match &p.sub {
            Some(s) => format!("{}.{s}", p.name),
            None => p.name.clone(),
        };
        match f {
            Filter::Compare(p, op, v) => {
                let op = format!("{op:?}").to_lowercase();
                format!("{} {op} {v}", path(p))
            }
            Filter::Present(p) => format!("{} pr", path(p)),
            Filter::And(a, b) => format!("({} and {})", show(a), show(b)),
            Filter::Or(a, b) => format!("({} or {})", show(a), show(b)),
            Filter::Not(a) => format!("not ({})", show(a)),
            Filter::ValuePath(p, inner) => format!("{}[{}]", path(p), show(inner)),
        }
    }

    proptest! {
        /// Printing a filter and parsing it back gives the same filter.
        #[test]
        fn printed_filters_parse_back(f in filter()) {
            let text = show(&f);
            prop_assert_eq!(parse(&text).map_err(|e| e.0), Ok(f), "{}", text);
        }

        /// The parser never panics, whatever it is given.
        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,60}") {
            let _ = parse(&s);
            let _ = parse_path(&s);
        }

        /// `not` inverts, `and`/`or` follow boolean logic, on any resource.
        #[test]
        fn evaluation_follows_boolean_logic(a in filter(), b in filter(), name in word(), val in any::<String>()) {
            let r = json!({ name.clone(): val, "emails": [{"value": "x@y.test"}] });
            let and = Filter::And(Box::new(a.clone()), Box::new(b.clone()));
            let or = Filter::Or(Box::new(a.clone()), Box::new(b.clone()));
            prop_assert_eq!(and.matches(&r), a.matches(&r) && b.matches(&r));
            prop_assert_eq!(or.matches(&r), a.matches(&r) || b.matches(&r));
            prop_assert_eq!(Filter::Not(Box::new(a.clone())).matches(&r), !a.matches(&r));
        }
    }
}
