//! The parsed form of an SQL92 filter, and its canonical text.
//!
//! The tree keeps the surface constructs (BETWEEN, IN, `<>`, IS NOT NULL …) rather than RocketMQ's
//! desugared form, so that it prints back as what was written; `eval.rs` gives each construct the
//! meaning RocketMQ's desugaring has. Parentheses and unary `+` leave no node: in RocketMQ they
//! return the inner expression itself, so `(5)` is still a literal and `(a)` still a property.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Null,
    Bool(bool),
    /// A decimal literal that fits Java's `int`; RocketMQ keeps `int` and `long` apart, and the
    /// type of a literal decides how a property compared with it is parsed.
    Int(i32),
    Long(i64),
    Double(f64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Literal(Literal),
    Property(String),
    Negate(Box<Expr>),
    /// The operand is boolean-typed or a property (a property in a boolean position is cast).
    Not(Box<Expr>),
    /// Flattened `a AND b AND c`: left to right with short-circuit, which is exactly the
    /// left-nested binary form RocketMQ builds (see `eval.rs`), without its depth.
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Compare(CmpOp, Box<Expr>, Box<Expr>),
    IsNull {
        operand: Box<Expr>,
        negated: bool,
    },
    Between {
        operand: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    /// RocketMQ allows IN only on a property, with string literals. `values` is sorted and
    /// deduplicated.
    In {
        property: String,
        values: Vec<String>,
        negated: bool,
    },
    Text {
        op: TextOp,
        operand: Box<Expr>,
        pattern: String,
        negated: bool,
    },
}

impl Expr {
    /// RocketMQ's `BooleanExpression`: what AND, OR and NOT accept without a cast.
    pub(crate) fn is_boolean(&self) -> bool {
        match self {
            Expr::Literal(l) => matches!(l, Literal::Bool(_) | Literal::Null),
            Expr::Property(_) | Expr::Negate(_) => false,
            Expr::Not(_)
            | Expr::And(_)
            | Expr::Or(_)
            | Expr::Compare(..)
            | Expr::IsNull { .. }
            | Expr::Between { .. }
            | Expr::In { .. }
            | Expr::Text { .. } => true,
        }
    }
}

/// Writes a string literal, doubling quotes.
pub(crate) fn quote(s: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "'{}'", s.replace('\'', "''"))
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("NULL"),
            Literal::Bool(true) => f.write_str("TRUE"),
            Literal::Bool(false) => f.write_str("FALSE"),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Long(i) => write!(f, "{i}"),
            // `{:?}` always has a `.` or an exponent, so it reads back as a double.
            Literal::Double(d) => write!(f, "{d:?}"),
            Literal::Str(s) => quote(s, f),
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        })
    }
}

impl fmt::Display for TextOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TextOp::Contains => "CONTAINS",
            TextOp::StartsWith => "STARTSWITH",
            TextOp::EndsWith => "ENDSWITH",
        })
    }
}

/// Canonical text: every binary compound is parenthesised, so it parses back to the same tree.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let not = |n: bool| if n { "NOT " } else { "" };
        match self {
            Expr::Literal(l) => write!(f, "{l}"),
            Expr::Property(p) => f.write_str(p),
            // Unary operators get no parentheses of their own (they bind tightest, and every
            // compound operand prints parenthesised), so the canonical text nests no deeper
            // than the tree; a space keeps `- -1` from reading as a `--` comment.
            Expr::Negate(e) => match **e {
                Expr::Negate(_) => write!(f, "- {e}"),
                _ => write!(f, "-{e}"),
            },
            Expr::Not(e) => write!(f, "NOT {e}"),
            Expr::And(es) | Expr::Or(es) => {
                let sep = if matches!(self, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                f.write_str("(")?;
                for (i, e) in es.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str(")")
            }
            Expr::Compare(op, l, r) => write!(f, "({l} {op} {r})"),
            Expr::IsNull { operand, negated } => write!(f, "({operand} IS {}NULL)", not(*negated)),
            Expr::Between {
                operand,
                low,
                high,
                negated,
            } => {
                write!(f, "({operand} {}BETWEEN {low} AND {high})", not(*negated))
            }
            Expr::In {
                property,
                values,
                negated,
            } => {
                write!(f, "({property} {}IN (", not(*negated))?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    quote(v, f)?;
                }
                f.write_str("))")
            }
            Expr::Text {
                op,
                operand,
                pattern,
                negated,
            } => {
                write!(f, "({operand} {}{op} ", not(*negated))?;
                quote(pattern, f)?;
                f.write_str(")")
            }
        }
    }
}
