//! Broker-side message filters, as RocketMQ defines them: tag expressions (`TagA || TagB`) and
//! SQL92 expressions over message properties (`a BETWEEN 0 AND 3 AND b = 'hello'`).
//!
//! Pure code: no I/O, no async, nothing of the broker. A [`Filter`] is parsed once (from a share
//! group's `fjord.share.filter.*` configs, a view's `fjord.view.filter.*`, or a RocketMQ
//! subscription) and then asked, per message, whether it [`matches`](Filter::matches) the
//! message's properties — Kafka record headers, whose values are read as UTF-8. The grammar,
//! the semantics and where they differ from RocketMQ are in `docs/FILTERS.md`.
//!
//! ```
//! use std::collections::HashMap;
//! use fjord_filter::{Filter, FilterKind};
//!
//! let f = Filter::parse(FilterKind::Sql92, "a BETWEEN 0 AND 3 AND b = 'hello'").unwrap();
//! let msg: HashMap<String, String> =
//!     [("a".into(), "2".into()), ("b".into(), "hello".into())].into();
//! assert!(f.matches(&msg));
//! assert!(!f.matches_fn(|_| None)); // a missing property is NULL: unknown, so no match
//! ```

#![forbid(unsafe_code)]

mod ast;
mod error;
mod eval;
mod java;
mod lexer;
mod parser;
mod tag;

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::str::FromStr;

pub use error::FilterError;

use ast::{CmpOp, Expr, Literal};
use tag::TagFilter;

/// Longest expression accepted, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 64 * 1024;

/// Deepest nesting accepted (parentheses and unary operators while parsing, and the height of
/// the parsed tree), so neither parsing nor evaluation can exhaust a thread's stack.
pub const MAX_DEPTH: usize = 100;

/// The property (Kafka header) holding a message's tag.
pub const TAGS: &str = "TAGS";

/// Which language an expression is in: the `fjord.share.filter.type` /
/// `fjord.view.filter.type` config, RocketMQ's `ExpressionType` (`TAG`, `SQL92`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterKind {
    Tag,
    Sql92,
}

impl FilterKind {
    /// The config value: `tag` or `sql92`.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterKind::Tag => "tag",
            FilterKind::Sql92 => "sql92",
        }
    }
}

impl fmt::Display for FilterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `tag` or `sql92`, in any case (RocketMQ clients send `TAG` and `SQL92`).
impl FromStr for FilterKind {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<FilterKind, FilterError> {
        if s.eq_ignore_ascii_case("tag") {
            Ok(FilterKind::Tag)
        } else if s.eq_ignore_ascii_case("sql92") {
            Ok(FilterKind::Sql92)
        } else {
            Err(FilterError::UnknownKind(s.to_string()))
        }
    }
}

/// A message's properties, looked up by name. A missing property is SQL NULL.
///
/// Implemented for string maps and for slices, arrays and vectors of `(name, value)` pairs (Kafka
/// headers may repeat a name; the last one wins, like Kafka's `Headers.lastHeader`). For a
/// closure, use [`Filter::matches_fn`].
pub trait Properties {
    fn property(&self, name: &str) -> Option<&str>;
}

impl<K, V, S> Properties for HashMap<K, V, S>
where
    K: Borrow<str> + Hash + Eq,
    V: AsRef<str>,
    S: BuildHasher,
{
    fn property(&self, name: &str) -> Option<&str> {
        self.get(name).map(AsRef::as_ref)
    }
}

impl<K: Borrow<str> + Ord, V: AsRef<str>> Properties for BTreeMap<K, V> {
    fn property(&self, name: &str) -> Option<&str> {
        self.get(name).map(AsRef::as_ref)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Properties for [(K, V)] {
    fn property(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Properties for [(K, V); N] {
    fn property(&self, name: &str) -> Option<&str> {
        self.as_slice().property(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Properties for Vec<(K, V)> {
    fn property(&self, name: &str) -> Option<&str> {
        self.as_slice().property(name)
    }
}

/// Adapts a lookup closure; the `PhantomData` ties the values' lifetime to the adapter's.
struct FnProperties<'p, F>(F, PhantomData<&'p str>);

impl<'p, F: Fn(&str) -> Option<&'p str>> Properties for FnProperties<'p, F> {
    fn property(&self, name: &str) -> Option<&str> {
        (self.0)(name)
    }
}

/// A parsed tag or SQL92 filter. Cheap to evaluate, immutable, `Send + Sync`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    kind: FilterKind,
    source: String,
    inner: Inner,
}

#[derive(Debug, Clone, PartialEq)]
enum Inner {
    Tag(TagFilter),
    Sql(Expr),
}

impl Filter {
    /// Parses `expression` as `kind`. Total: any input gives a filter or an error.
    pub fn parse(kind: FilterKind, expression: &str) -> Result<Filter, FilterError> {
        if expression.len() > MAX_EXPRESSION_LEN {
            return Err(FilterError::TooLong {
                len: expression.len(),
                max: MAX_EXPRESSION_LEN,
            });
        }
        let inner = match kind {
            FilterKind::Tag => Inner::Tag(tag::parse(expression)?),
            FilterKind::Sql92 => Inner::Sql(parser::parse(expression)?),
        };
        Ok(Filter {
            kind,
            source: expression.to_string(),
            inner,
        })
    }

    /// The filter that lets every message through (tag expression `*`).
    pub fn all() -> Filter {
        Filter {
            kind: FilterKind::Tag,
            source: "*".to_string(),
            inner: Inner::Tag(TagFilter::All),
        }
    }

    pub fn kind(&self) -> FilterKind {
        self.kind
    }

    /// The expression as given to [`Filter::parse`].
    pub fn expression(&self) -> &str {
        &self.source
    }

    /// True when every message matches (a `*` tag expression), so a reader can skip filtering.
    pub fn matches_all(&self) -> bool {
        matches!(self.inner, Inner::Tag(TagFilter::All))
    }

    /// Whether a message with these properties passes. For SQL92 only a TRUE result passes:
    /// FALSE, unknown (NULL) and an evaluation error (where RocketMQ's evaluator throws, e.g.
    /// `a > 5` when `a` is `abc`) do not.
    pub fn matches<P: Properties + ?Sized>(&self, props: &P) -> bool {
        match &self.inner {
            Inner::Tag(t) => t.matches(props.property(TAGS)),
            Inner::Sql(e) => eval::matches(e, props),
        }
    }

    /// [`Filter::matches`] with properties looked up by a closure.
    pub fn matches_fn<'p>(&self, lookup: impl Fn(&str) -> Option<&'p str>) -> bool {
        self.matches(&FnProperties(lookup, PhantomData))
    }

    /// The tags a matching message must have one of, when the filter implies that: `Some` for a
    /// tag list, and for SQL92 whose truth requires `TAGS = 'x'` or `TAGS IN (…)` (through AND,
    /// and through OR when every branch does); sorted, without duplicates, possibly empty (then
    /// nothing can match). `None` when a message with any tag (or none) might match.
    ///
    /// Lets a reader skip whole batches by a summary of the tags in them.
    pub fn required_tags(&self) -> Option<Vec<&str>> {
        let mut tags = match &self.inner {
            Inner::Tag(TagFilter::All) => return None,
            Inner::Tag(TagFilter::AnyOf(tags)) => tags.iter().map(String::as_str).collect(),
            Inner::Sql(e) => sql_required_tags(e)?,
        };
        tags.sort_unstable();
        tags.dedup();
        Some(tags)
    }
}

/// The tags `e` being TRUE implies (see [`Filter::required_tags`]).
fn sql_required_tags(e: &Expr) -> Option<Vec<&str>> {
    match e {
        Expr::Compare(CmpOp::Eq, l, r) => match (&**l, &**r) {
            (Expr::Property(p), Expr::Literal(Literal::Str(s)))
            | (Expr::Literal(Literal::Str(s)), Expr::Property(p))
                if p == TAGS =>
            {
                Some(vec![s.as_str()])
            }
            _ => None,
        },
        Expr::In {
            property,
            values,
            negated: false,
        } if property == TAGS => Some(values.iter().map(String::as_str).collect()),
        // TRUE needs every conjunct TRUE: the intersection of what the constrained ones allow.
        Expr::And(items) => items
            .iter()
            .filter_map(sql_required_tags)
            .reduce(|a, b| a.into_iter().filter(|t| b.contains(t)).collect()),
        // TRUE needs some branch TRUE: the union, but only if no branch is unconstrained.
        Expr::Or(items) => {
            let mut all = Vec::new();
            for item in items {
                all.extend(sql_required_tags(item)?);
            }
            Some(all)
        }
        _ => None,
    }
}

/// The expression as given, for logs and config echoes.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.source)
    }
}

impl Filter {
    /// The parsed SQL92 expression printed back canonically (every compound parenthesised),
    /// or the normalised tag list; what the filter means, independent of how it was spelled.
    pub fn canonical(&self) -> String {
        match &self.inner {
            Inner::Tag(TagFilter::All) => "*".to_string(),
            // A lone `*` tag needs a separator, or it would read back as "everything".
            Inner::Tag(TagFilter::AnyOf(tags)) if tags == &["*"] => "* ||".to_string(),
            Inner::Tag(TagFilter::AnyOf(tags)) => tags.join(" || "),
            Inner::Sql(e) => e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
