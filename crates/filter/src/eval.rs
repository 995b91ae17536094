//! Evaluation with RocketMQ's three-valued logic (`Value::Null` is SQL's unknown).
//!
//! Each construct gets the meaning of the Java objects RocketMQ builds for it:
//! `a BETWEEN l AND h` is `a >= l AND a <= h`, `NOT BETWEEN` is `a < l OR a > h`, `<>` is
//! `NOT (=)`, `IS NULL` is an `=` against NULL. Operands are evaluated in Java's order and AND/OR
//! short-circuit as Java's do, because an [`Abort`] (a Java exception) in an operand that Java
//! would not have evaluated must not fail the message here either.

use crate::ast::{CmpOp, Expr, TextOp};
use crate::java::{cmp_f64, compare, parse_double, Abort, Value};
use crate::Properties;

type Eval<'a> = Result<Value<'a>, Abort>;

/// What the broker does with the result: only TRUE matches; NULL, FALSE and errors do not.
pub(crate) fn matches<P: Properties + ?Sized>(e: &Expr, props: &P) -> bool {
    matches!(eval_bool(e, props), Ok(Value::Bool(true)))
}

/// An operand of AND, OR, NOT or the whole filter: a bare property is cast to boolean
/// (`UnaryExpression.createBooleanCast`), which, as property values are strings, is FALSE when
/// present and NULL when absent.
fn eval_bool<'a, P: Properties + ?Sized>(e: &'a Expr, props: &'a P) -> Eval<'a> {
    match e {
        Expr::Property(name) => Ok(match props.property(name) {
            Some(_) => Value::Bool(false),
            None => Value::Null,
        }),
        _ => eval(e, props),
    }
}

/// Kept to a small frame: the bulkier constructs live in their own functions, so that the
/// recursion through nested expressions costs little stack in unoptimised builds too.
fn eval<'a, P: Properties + ?Sized>(e: &'a Expr, props: &'a P) -> Eval<'a> {
    Ok(match e {
        Expr::Literal(l) => Value::from(l),
        Expr::Property(name) => props.property(name).map_or(Value::Null, Value::Str),
        Expr::Negate(inner) => match eval(inner, props)? {
            Value::Int(i) => Value::Int(i.wrapping_neg()),
            Value::Long(i) => Value::Long(i.wrapping_neg()),
            Value::Double(d) => Value::Double(-d),
            _ => Value::Null,
        },
        Expr::Not(inner) => not(eval_bool(inner, props)?)?,
        Expr::And(items) => logic(items, false, props)?,
        Expr::Or(items) => logic(items, true, props)?,
        Expr::Compare(CmpOp::Eq, l, r) => equal(eval(l, props)?, eval(r, props)?)?,
        Expr::Compare(CmpOp::Ne, l, r) => not(equal(eval(l, props)?, eval(r, props)?)?)?,
        Expr::Compare(op, l, r) => ordered(*op, l, r, props)?,
        Expr::IsNull { operand, negated } => {
            Value::Bool((eval(operand, props)? == Value::Null) != *negated)
        }
        Expr::Between {
            operand,
            low,
            high,
            negated,
        } => between(operand, low, high, *negated, props)?,
        Expr::In {
            property,
            values,
            negated,
        } => match props.property(property) {
            None => Value::Null,
            Some(v) => {
                Value::Bool(values.binary_search_by(|x| x.as_str().cmp(v)).is_ok() != *negated)
            }
        },
        Expr::Text {
            op,
            operand,
            pattern,
            negated,
        } => text(*op, operand, pattern, *negated, props)?,
    })
}

/// AND (`stop_on` false) or OR (`stop_on` true): stops at the first operand equal to `stop_on`;
/// otherwise unknown if any operand was, else `!stop_on`.
fn logic<'a, P: Properties + ?Sized>(items: &'a [Expr], stop_on: bool, props: &'a P) -> Eval<'a> {
    let mut unknown = false;
    for item in items {
        match eval_bool(item, props)? {
            Value::Bool(b) if b == stop_on => return Ok(Value::Bool(stop_on)),
            Value::Bool(_) => {}
            Value::Null => unknown = true,
            // `(Boolean) left.evaluate(..)` would throw; the parser leaves no way to get here.
            _ => return Err(Abort),
        }
    }
    Ok(if unknown {
        Value::Null
    } else {
        Value::Bool(!stop_on)
    })
}

/// `BETWEEN` is AND(>= low, <= high); `NOT BETWEEN` is OR(< low, > high).
fn between<'a, P: Properties + ?Sized>(
    operand: &'a Expr,
    low: &'a Expr,
    high: &'a Expr,
    negated: bool,
    props: &'a P,
) -> Eval<'a> {
    let (first, second, stop_on) = if negated {
        (CmpOp::Lt, CmpOp::Gt, true)
    } else {
        (CmpOp::Ge, CmpOp::Le, false)
    };
    let a = ordered(first, operand, low, props)?;
    if a == Value::Bool(stop_on) {
        return Ok(a);
    }
    let b = ordered(second, operand, high, props)?;
    if b == Value::Bool(stop_on) {
        return Ok(b);
    }
    Ok(if a == Value::Null || b == Value::Null {
        Value::Null
    } else {
        Value::Bool(!stop_on)
    })
}

/// CONTAINS, STARTSWITH, ENDSWITH and their NOT forms.
fn text<'a, P: Properties + ?Sized>(
    op: TextOp,
    operand: &'a Expr,
    pattern: &str,
    negated: bool,
    props: &'a P,
) -> Eval<'a> {
    // An empty pattern is FALSE before the operand is even looked at, and a non-string (or
    // NULL) operand is FALSE, not unknown — for the NOT forms too.
    if pattern.is_empty() {
        return Ok(Value::Bool(false));
    }
    Ok(match eval(operand, props)? {
        Value::Str(s) => {
            let hit = match op {
                TextOp::Contains => s.contains(pattern),
                TextOp::StartsWith => s.starts_with(pattern),
                TextOp::EndsWith => s.ends_with(pattern),
            };
            Value::Bool(hit != negated)
        }
        _ => Value::Bool(false),
    })
}

fn not(v: Value<'_>) -> Eval<'_> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::Bool(b) => Ok(Value::Bool(!b)),
        // `(Boolean) right.evaluate(..)` would throw; the parser leaves no way to get here.
        _ => Err(Abort),
    }
}

/// `doCreateEqual`: both sides evaluated; NULL on the left is unknown, NULL only on the right is
/// FALSE (Java's asymmetry), both NULL is TRUE.
fn equal<'a>(l: Value<'a>, r: Value<'a>) -> Eval<'a> {
    Ok(match (l, r) {
        (Value::Null, Value::Null) => Value::Bool(true),
        (Value::Null, _) => Value::Null,
        (_, Value::Null) => Value::Bool(false),
        (l, r) => Value::Bool(compare(&l, &r)?.is_eq()),
    })
}

/// `>`, `>=`, `<`, `<=`: NULL on either side is unknown (the right is not evaluated when the
/// left is NULL); two strings are both parsed as doubles.
fn ordered<'a, P: Properties + ?Sized>(
    op: CmpOp,
    l: &'a Expr,
    r: &'a Expr,
    props: &'a P,
) -> Eval<'a> {
    let lv = eval(l, props)?;
    if lv == Value::Null {
        return Ok(Value::Null);
    }
    let rv = eval(r, props)?;
    if rv == Value::Null {
        return Ok(Value::Null);
    }
    let ord = match (lv, rv) {
        (Value::Str(a), Value::Str(b)) => cmp_f64(parse_double(a)?, parse_double(b)?),
        _ => compare(&lv, &rv)?,
    };
    Ok(Value::Bool(match op {
        CmpOp::Gt => ord.is_gt(),
        CmpOp::Ge => ord.is_ge(),
        CmpOp::Lt => ord.is_lt(),
        CmpOp::Le => ord.is_le(),
        // Not reached (equality has its own rules in `equal`); answered rather than panicking.
        CmpOp::Eq => ord.is_eq(),
        CmpOp::Ne => ord.is_ne(),
    }))
}
