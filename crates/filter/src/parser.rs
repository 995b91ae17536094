//! A parser for RocketMQ's selector grammar (`SelectorParser.jj`), with the checks its
//! expression factories make at parse time (`ComparisonExpression.create*`,
//! `SelectorParser.asBooleanExpression`), so that what RocketMQ refuses is refused here too.
//!
//! Precedence, loosest first — note NOT binds tighter than comparisons, as in RocketMQ:
//! ```text
//! or         := and (OR and)*
//! and        := equality (AND equality)*
//! equality   := comparison ( "=" comparison | "<>" comparison | IS [NOT] NULL )*
//! comparison := unary ( (">"|">="|"<"|"<=") unary
//!                     | [NOT] (CONTAINS|STARTSWITH|ENDSWITH) string
//!                     | [NOT] BETWEEN unary AND unary
//!                     | [NOT] IN "(" string ("," string)* ")" )*
//! unary      := "+" unary | "-" unary | NOT unary | primary
//! primary    := literal | identifier | "(" or ")"
//! ```

use crate::ast::{CmpOp, Expr, Literal, TextOp};
use crate::error::FilterError;
use crate::java;
use crate::lexer::{tokenize, Tok, Token};
use crate::MAX_DEPTH;

/// Parses a whole SQL92 expression (the caller has checked its length).
pub(crate) fn parse(src: &str) -> Result<Expr, FilterError> {
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let start = p.pos();
    let (e, _) = p.or()?;
    if p.peek() != &Tok::Eof {
        // RocketMQ's JmsSelector() never asks for <EOF> and silently drops the rest, which turns
        // a forgotten AND into a different filter; refusing is the safer reading.
        return Err(FilterError::syntax(
            format!(
                "unexpected {} after a complete expression",
                p.peek().describe()
            ),
            p.pos(),
        ));
    }
    boolean(e, start)
}

/// A parsed subexpression and the height of its tree, which bounds evaluation's recursion.
type Node = (Expr, usize);

/// Precedence levels, loosest first.
const OR: u8 = 1;
const AND: u8 = 2;
const EQUALITY: u8 = 3;
const COMPARISON: u8 = 4;

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// Current recursion depth of `unary` and parenthesised `or`, bounding the parser's stack.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.at].tok
    }

    fn peek2(&self) -> &Tok {
        &self.tokens[(self.at + 1).min(self.tokens.len() - 1)].tok
    }

    fn pos(&self) -> usize {
        self.tokens[self.at].pos
    }

    fn bump(&mut self) -> Tok {
        let t = self.tokens[self.at].tok.clone();
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        t
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), FilterError> {
        if *self.peek() == want {
            self.bump();
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn unexpected(&self, what: &str) -> FilterError {
        FilterError::syntax(
            format!("expected {what}, found {}", self.peek().describe()),
            self.pos(),
        )
    }

    /// Builds a node one level above its children, refusing trees too tall to evaluate safely.
    fn node(&self, e: Expr, child_height: usize, pos: usize) -> Result<Node, FilterError> {
        let h = child_height + 1;
        if h > MAX_DEPTH {
            return Err(FilterError::TooDeep {
                max: MAX_DEPTH,
                position: pos,
            });
        }
        Ok((e, h))
    }

    fn enter(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::TooDeep {
                max: MAX_DEPTH,
                position: self.pos(),
            });
        }
        Ok(())
    }

    /// The binary and postfix levels, by precedence climbing rather than one function per
    /// level: a parenthesised expression then costs a few stack frames instead of eight, which
    /// is what keeps [`MAX_DEPTH`] levels affordable on a small stack.
    fn or(&mut self) -> Result<Node, FilterError> {
        self.expr(OR)
    }

    /// Parses operators of level `min` or tighter. After an operator of some level only that
    /// level or looser may follow (`cap`), as in the grammar: `a IS NULL > 1` is an error there,
    /// not `(a IS NULL) > 1`.
    fn expr(&mut self, min: u8) -> Result<Node, FilterError> {
        let start = self.pos();
        let (mut left, mut height) = self.unary()?;
        let mut cap = COMPARISON;
        while let Some(level) = self.level() {
            if level < min || level > cap {
                break;
            }
            cap = level;
            (left, height) = match level {
                OR | AND => self.logic(left, height, level, start)?,
                EQUALITY => self.equality(left, height, start)?,
                _ => self.comparison(left, height, start)?,
            };
        }
        Ok((left, height))
    }

    /// The precedence level of the operator at the cursor, if one continues an expression.
    fn level(&self) -> Option<u8> {
        let postfix = |t: &Tok| {
            matches!(
                t,
                Tok::Contains | Tok::StartsWith | Tok::EndsWith | Tok::Between | Tok::In
            )
        };
        match self.peek() {
            Tok::Or => Some(OR),
            Tok::And => Some(AND),
            Tok::Eq | Tok::Ne | Tok::Is => Some(EQUALITY),
            Tok::Gt | Tok::Ge | Tok::Lt | Tok::Le => Some(COMPARISON),
            t if postfix(t) => Some(COMPARISON),
            // `NOT` continues a comparison only before one of these (LOOKAHEAD(2) in the .jj);
            // otherwise it is left unconsumed, and is then a syntax error.
            Tok::Not if postfix(self.peek2()) => Some(COMPARISON),
            _ => None,
        }
    }

    /// A whole run of `OR` (or `AND`) operands, flattened into one node. Operands must be
    /// boolean or a property (cast), as RocketMQ's `asBooleanExpression` demands.
    fn logic(
        &mut self,
        first: Expr,
        h: usize,
        level: u8,
        start: usize,
    ) -> Result<Node, FilterError> {
        let op = if level == OR { Tok::Or } else { Tok::And };
        let mut height = h;
        let mut items = Vec::new();
        push_flat(&mut items, boolean(first, start)?, &op);
        while *self.peek() == op {
            self.bump();
            let at = self.pos();
            let (e, h) = self.expr(level + 1)?;
            height = height.max(h);
            push_flat(&mut items, boolean(e, at)?, &op);
        }
        let e = if level == OR {
            Expr::Or(items)
        } else {
            Expr::And(items)
        };
        self.node(e, height, start)
    }

    /// One `=`, `<>` or `IS [NOT] NULL` applied to `left`.
    fn equality(&mut self, left: Expr, height: usize, start: usize) -> Result<Node, FilterError> {
        let at = self.pos();
        let t = self.bump();
        if t == Tok::Is {
            let negated = *self.peek() == Tok::Not;
            if negated {
                self.bump();
            }
            self.expect(Tok::Null, if negated { "NULL" } else { "NULL or NOT NULL" })?;
            return self.node(
                Expr::IsNull {
                    operand: Box::new(left),
                    negated,
                },
                height,
                at,
            );
        }
        let op = if t == Tok::Eq { CmpOp::Eq } else { CmpOp::Ne };
        let rpos = self.pos();
        let (right, rh) = self.expr(COMPARISON)?;
        check_equal(&left, &right, start, rpos)?;
        let e = Expr::Compare(op, Box::new(left), Box::new(right));
        self.node(e, height.max(rh), at)
    }

    /// One comparison-level operator applied to `left`; its operands are unary expressions.
    fn comparison(&mut self, left: Expr, height: usize, start: usize) -> Result<Node, FilterError> {
        let at = self.pos();
        let negated = *self.peek() == Tok::Not;
        if negated {
            self.bump();
        }
        let (e, h) = match self.bump() {
            t @ (Tok::Gt | Tok::Ge | Tok::Lt | Tok::Le) => {
                let op = match t {
                    Tok::Gt => CmpOp::Gt,
                    Tok::Ge => CmpOp::Ge,
                    Tok::Lt => CmpOp::Lt,
                    _ => CmpOp::Le,
                };
                let rpos = self.pos();
                let (right, rh) = self.unary()?;
                check_ordered(&left, start)?;
                check_ordered(&right, rpos)?;
                (
                    Expr::Compare(op, Box::new(left), Box::new(right)),
                    height.max(rh),
                )
            }
            Tok::Between => {
                let lpos = self.pos();
                let (low, lh) = self.unary()?;
                self.expect(Tok::And, "AND in BETWEEN … AND …")?;
                let hpos = self.pos();
                let (high, hh) = self.unary()?;
                check_ordered(&left, start)?;
                check_ordered(&low, lpos)?;
                check_ordered(&high, hpos)?;
                if !negated {
                    // createNotBetween has no such check: `NOT BETWEEN 3 AND 1` is valid.
                    check_range(&low, &high, lpos)?;
                }
                let (operand, low, high) = (Box::new(left), Box::new(low), Box::new(high));
                (
                    Expr::Between {
                        operand,
                        low,
                        high,
                        negated,
                    },
                    height.max(lh).max(hh),
                )
            }
            Tok::In => {
                let Expr::Property(property) = left else {
                    return Err(FilterError::syntax(
                        "IN needs a property on its left",
                        start,
                    ));
                };
                self.expect(Tok::LParen, "( after IN")?;
                let mut values = vec![self.string("a string literal in IN (…)")?];
                while *self.peek() == Tok::Comma {
                    self.bump();
                    values.push(self.string("a string literal in IN (…)")?);
                }
                self.expect(Tok::RParen, ", or ) in IN (…)")?;
                // Order and repeats do not change the meaning; sorted, lookups can bisect.
                values.sort_unstable();
                values.dedup();
                (
                    Expr::In {
                        property,
                        values,
                        negated,
                    },
                    0,
                )
            }
            kw => {
                let op = match kw {
                    Tok::Contains => TextOp::Contains,
                    Tok::StartsWith => TextOp::StartsWith,
                    _ => TextOp::EndsWith,
                };
                let pattern = self.string(&format!("a string literal after {op}"))?;
                (
                    Expr::Text {
                        op,
                        operand: Box::new(left),
                        pattern,
                        negated,
                    },
                    height,
                )
            }
        };
        self.node(e, h, at)
    }

    fn string(&mut self, what: &str) -> Result<String, FilterError> {
        if !matches!(self.peek(), Tok::Str(_)) {
            return Err(self.unexpected(what));
        }
        match self.bump() {
            Tok::Str(s) => Ok(s),
            _ => Err(self.unexpected(what)), // not reached: the token was just peeked
        }
    }

    fn unary(&mut self) -> Result<Node, FilterError> {
        let at = self.pos();
        match self.peek() {
            Tok::Plus | Tok::Minus | Tok::Not => {
                let t = self.bump();
                self.enter()?;
                let operand_pos = self.pos();
                let (e, h) = self.unary()?;
                self.depth -= 1;
                match t {
                    Tok::Plus => Ok((e, h)),
                    Tok::Minus => self.node(Expr::Negate(Box::new(e)), h, at),
                    _ => self.node(Expr::Not(Box::new(boolean(e, operand_pos)?)), h, at),
                }
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Node, FilterError> {
        let at = self.pos();
        if *self.peek() == Tok::LParen {
            self.bump();
            self.enter()?;
            let inner = self.or()?;
            self.depth -= 1;
            self.expect(Tok::RParen, ")")?;
            return Ok(inner);
        }
        let lit = match self.bump() {
            Tok::Ident(name) => return Ok((Expr::Property(name), 1)),
            Tok::Str(s) => Literal::Str(s),
            Tok::True => Literal::Bool(true),
            Tok::False => Literal::Bool(false),
            Tok::Null => Literal::Null,
            Tok::Decimal(text) => decimal(&text, at)?,
            Tok::Float(text) => float(&text, at)?,
            other => {
                let found = other.describe();
                let msg = format!("expected a value, a property or (, found {found}");
                return Err(FilterError::syntax(msg, at));
            }
        };
        Ok((Expr::Literal(lit), 1))
    }
}

fn push_flat(items: &mut Vec<Expr>, e: Expr, op: &Tok) {
    match (e, op) {
        (Expr::And(inner), Tok::And) | (Expr::Or(inner), Tok::Or) => items.extend(inner),
        (e, _) => items.push(e),
    }
}

/// RocketMQ's `asBooleanExpression`: a property is cast (at evaluation), other values refused.
fn boolean(e: Expr, pos: usize) -> Result<Expr, FilterError> {
    if e.is_boolean() || matches!(e, Expr::Property(_)) {
        Ok(e)
    } else {
        Err(FilterError::syntax(
            format!("`{e}` is not a boolean expression"),
            pos,
        ))
    }
}

/// `checkLessThanOperand`: only numbers (or what may evaluate to one) can be ordered.
fn check_ordered(e: &Expr, pos: usize) -> Result<(), FilterError> {
    let numeric_literal = matches!(
        e,
        Expr::Literal(Literal::Int(_) | Literal::Long(_) | Literal::Double(_))
    );
    if e.is_boolean() || (matches!(e, Expr::Literal(_)) && !numeric_literal) {
        return Err(FilterError::syntax(
            format!("`{e}` cannot be compared with <, <=, >, >= or BETWEEN (only numbers can)"),
            pos,
        ));
    }
    Ok(())
}

/// `checkEqualOperand` and `checkEqualOperandCompatability`.
fn check_equal(l: &Expr, r: &Expr, lpos: usize, rpos: usize) -> Result<(), FilterError> {
    for (e, pos) in [(l, lpos), (r, rpos)] {
        if matches!(e, Expr::Literal(Literal::Null)) {
            return Err(FilterError::syntax(
                "NULL cannot be compared with = or <>; use IS NULL or IS NOT NULL",
                pos,
            ));
        }
    }
    if let (Expr::Literal(_), Expr::Literal(_)) = (l, r) {
        if l.is_boolean() && !r.is_boolean() {
            return Err(FilterError::syntax(
                format!("`{l}` cannot be compared with `{r}`"),
                lpos,
            ));
        }
    }
    Ok(())
}

/// `createBetween` refuses constant bounds in the wrong order.
fn check_range(low: &Expr, high: &Expr, pos: usize) -> Result<(), FilterError> {
    if let (Expr::Literal(l), Expr::Literal(h)) = (low, high) {
        let (l, h) = (java::Value::from(l), java::Value::from(h));
        if java::compare(&h, &l).is_ok_and(|o| o.is_lt()) {
            return Err(FilterError::syntax(
                format!("BETWEEN {l} AND {h}: the lower bound must not be above the upper bound"),
                pos,
            ));
        }
    }
    Ok(())
}

/// `ConstantExpression.createFromDecimal`: Java `long` range, narrowed to `int` when it fits.
fn decimal(text: &str, pos: usize) -> Result<Literal, FilterError> {
    let v: i64 = text.parse().map_err(|_| {
        FilterError::syntax(
            format!("number {text} is out of range (64-bit integers)"),
            pos,
        )
    })?;
    Ok(match i32::try_from(v) {
        Ok(i) => Literal::Int(i),
        Err(_) => Literal::Long(v),
    })
}

/// `ConstantExpression.createFloat`, minus its refusal of 0.0 (see docs/FILTERS.md).
fn float(text: &str, pos: usize) -> Result<Literal, FilterError> {
    match text.parse::<f64>() {
        Ok(d) if d.is_finite() => Ok(Literal::Double(d)),
        _ => Err(FilterError::syntax(
            format!("number {text} is out of range"),
            pos,
        )),
    }
}
