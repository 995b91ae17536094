//! The Java value semantics RocketMQ's evaluator inherits: `Integer`/`Long`/`Double`/`Boolean`/
//! `String` objects, `ComparisonExpression.__compare` with string conversion switched on (as
//! `SelectorParser.parse` always does), and `Integer.valueOf`/`Long.valueOf`/`Double.valueOf`.
//!
//! Where Java throws (a number that does not parse, the `ClassCastException` of comparing
//! `TRUE` with a string), this returns [`Abort`]: RocketMQ's broker catches the exception and the
//! message does not match, whatever the rest of the expression says.

use std::cmp::Ordering;
use std::fmt;

use crate::ast::Literal;

/// A value during evaluation; strings borrow from the expression or the message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Str(&'a str),
}

/// Evaluation threw in RocketMQ: the whole filter is false for this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Abort;

impl<'a> From<&'a Literal> for Value<'a> {
    fn from(l: &'a Literal) -> Value<'a> {
        match l {
            Literal::Null => Value::Null,
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Int(i) => Value::Int(*i),
            Literal::Long(i) => Value::Long(*i),
            Literal::Double(d) => Value::Double(*d),
            Literal::Str(s) => Value::Str(s),
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => f.write_str(if *b { "TRUE" } else { "FALSE" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Long(i) => write!(f, "{i}"),
            Value::Double(d) => write!(f, "{d:?}"),
            Value::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
        }
    }
}

/// `__compare(lv, rv, true)`: converts across types the way Java's code does, including its
/// quirks — unrelated types compare as "less" (-1), and a `Boolean` on the left of a `String`
/// throws (it casts the Boolean to String).
pub(crate) fn compare(l: &Value, r: &Value) -> Result<Ordering, Abort> {
    use Value::*;
    Ok(match (*l, *r) {
        (Bool(a), Bool(b)) => a.cmp(&b),
        (Int(a), Int(b)) => a.cmp(&b),
        (Long(a), Long(b)) => a.cmp(&b),
        (Double(a), Double(b)) => cmp_f64(a, b),
        (Str(a), Str(b)) => a.cmp(b),
        (Bool(_), Str(_)) => return Err(Abort),
        (Int(a), Long(b)) => i64::from(a).cmp(&b),
        (Long(a), Int(b)) => a.cmp(&i64::from(b)),
        (Int(a), Double(b)) => cmp_f64(f64::from(a), b),
        (Double(a), Int(b)) => cmp_f64(a, f64::from(b)),
        (Long(a), Double(b)) => cmp_f64(a as f64, b),
        (Double(a), Long(b)) => cmp_f64(a, b as f64),
        (Int(a), Str(b)) => a.cmp(&parse_int(b)?),
        (Long(a), Str(b)) => a.cmp(&parse_long(b)?),
        (Double(a), Str(b)) => cmp_f64(a, parse_double(b)?),
        (Str(a), Int(b)) => parse_int(a)?.cmp(&b),
        (Str(a), Long(b)) => parse_long(a)?.cmp(&b),
        (Str(a), Double(b)) => cmp_f64(parse_double(a)?, b),
        (Str(a), Bool(b)) => java_bool(a).cmp(&b),
        // Number vs Boolean, and NULL (which callers settle before comparing): Java returns -1.
        _ => Ordering::Less,
    })
}

/// `Double.compareTo`: a total order with -0.0 below 0.0 and NaN above everything (and equal
/// to itself).
pub(crate) fn cmp_f64(a: f64, b: f64) -> Ordering {
    match a.partial_cmp(&b) {
        Some(Ordering::Equal) => a.is_sign_positive().cmp(&b.is_sign_positive()),
        Some(o) => o,
        None => a.is_nan().cmp(&b.is_nan()),
    }
}

/// `Boolean.valueOf(String)`.
fn java_bool(s: &str) -> bool {
    s.eq_ignore_ascii_case("true")
}

/// `Integer.valueOf(String)`: optional sign, decimal digits, no spaces. (Java also accepts
/// non-ASCII Unicode digits; Fjord does not.)
pub(crate) fn parse_int(s: &str) -> Result<i32, Abort> {
    s.parse().map_err(|_| Abort)
}

/// `Long.valueOf(String)`.
pub(crate) fn parse_long(s: &str) -> Result<i64, Abort> {
    s.parse().map_err(|_| Abort)
}

/// `Double.valueOf(String)`: trims ASCII control characters and spaces, optional sign, `NaN`,
/// `Infinity`, decimal digits with optional fraction and exponent, optional `f`/`d` suffix.
/// (Java's hexadecimal floating-point strings are not accepted.)
pub(crate) fn parse_double(s: &str) -> Result<f64, Abort> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let v = match body {
        "NaN" => f64::NAN,
        "Infinity" => f64::INFINITY,
        _ => {
            let body = body.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(body);
            if !is_decimal_float(body) {
                return Err(Abort);
            }
            body.parse::<f64>().map_err(|_| Abort)?
        }
    };
    Ok(if neg { -v } else { v })
}

/// digits [. digits] [e [+-] digits], with at least one mantissa digit — what Rust's `f64`
/// parser accepts too, minus its `inf`/`nan` spellings.
fn is_decimal_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut mantissa_digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        mantissa_digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            mantissa_digits += 1;
        }
    }
    if mantissa_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let d = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == d {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_parsing_is_javas() {
        assert_eq!(parse_double("1"), Ok(1.0));
        assert_eq!(parse_double(" 2.5 "), Ok(2.5));
        assert_eq!(parse_double("-.5e1"), Ok(-5.0));
        assert_eq!(parse_double("5."), Ok(5.0));
        assert_eq!(parse_double("1.5f"), Ok(1.5));
        assert_eq!(parse_double("3d"), Ok(3.0));
        assert_eq!(parse_double("Infinity"), Ok(f64::INFINITY));
        assert!(parse_double("NaN").unwrap().is_nan());
        for bad in [
            "", "-", ".", "e5", "1e", "inf", "nan", "1.2.3", "abc", "1 2", "0x10", "1ff",
        ] {
            assert_eq!(parse_double(bad), Err(Abort), "{bad:?}");
        }
    }

    #[test]
    fn integer_parsing_is_javas() {
        assert_eq!(parse_int("+7"), Ok(7));
        assert_eq!(parse_int("-007"), Ok(-7));
        for bad in ["", "+", " 1", "1.0", "2147483648"] {
            assert_eq!(parse_int(bad), Err(Abort), "{bad:?}");
        }
        assert_eq!(parse_long("2147483648"), Ok(2147483648));
    }

    #[test]
    fn double_order_is_total() {
        assert_eq!(cmp_f64(-0.0, 0.0), Ordering::Less);
        assert_eq!(cmp_f64(0.0, -0.0), Ordering::Greater);
        assert_eq!(cmp_f64(f64::NAN, f64::NAN), Ordering::Equal);
        assert_eq!(cmp_f64(f64::NAN, f64::INFINITY), Ordering::Greater);
        assert_eq!(cmp_f64(1.0, f64::NAN), Ordering::Less);
    }

    #[test]
    fn mixed_comparisons() {
        use Value::*;
        assert_eq!(compare(&Str("5"), &Int(5)), Ok(Ordering::Equal));
        assert_eq!(compare(&Str("5.0"), &Int(5)), Err(Abort));
        assert_eq!(compare(&Str("5"), &Double(5.0)), Ok(Ordering::Equal));
        assert_eq!(compare(&Str("TRUE"), &Bool(true)), Ok(Ordering::Equal));
        assert_eq!(compare(&Bool(true), &Str("true")), Err(Abort));
        assert_eq!(compare(&Int(1), &Bool(true)), Ok(Ordering::Less));
        assert_eq!(compare(&Long(1 << 40), &Int(1)), Ok(Ordering::Greater));
    }
}
