//! Differential property test: random expression trees are printed, parsed by `fjord-filter`,
//! and compared against a small reference written here from RocketMQ's Java sources in their
//! own shape — the object tree `SelectorParser` builds (BETWEEN as AND of >= and <=, `<>` as
//! NOT of `=`, IS NULL as `=` against the NULL constant, binary left-nested AND/OR), the factory
//! checks that throw at parse time, and `__compare` transcribed branch by branch.
//!
//! A tree the reference refuses must be refused by the parser; any other must parse and give
//! the reference's answer on random property maps, before and after a round trip through the
//! canonical text.

use std::collections::HashMap;

use fjord_filter::{Filter, FilterKind};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Surface trees, as a user would write them.

#[derive(Debug, Clone)]
enum S {
    Int(u32),
    Long(i64),
    Double(f64),
    Str(String),
    True,
    False,
    Null,
    Prop(&'static str),
    Plus(Box<S>),
    Neg(Box<S>),
    Not(Box<S>),
    And(Box<S>, Box<S>),
    Or(Box<S>, Box<S>),
    Cmp(&'static str, Box<S>, Box<S>),
    IsNull(Box<S>, bool),
    Between(Box<S>, Box<S>, Box<S>, bool),
    In(Box<S>, Vec<String>, bool),
    Text(&'static str, Box<S>, String, bool),
}

const NAMES: [&str; 4] = ["a", "b", "c", "TAGS"];
const STRINGS: [&str; 16] = [
    "",
    "x",
    "1",
    "2",
    "-1",
    "1.5",
    "0",
    "true",
    "TRUE",
    "abc",
    "a'b",
    " 2 ",
    "1e3",
    "NaN",
    "3000000000",
    "x1",
];

fn string() -> impl Strategy<Value = String> {
    prop::sample::select(&STRINGS[..]).prop_map(str::to_string)
}

fn leaf() -> impl Strategy<Value = S> {
    prop_oneof![
        3 => (0u32..4).prop_map(S::Int),
        1 => Just(S::Int(u32::MAX)),
        1 => Just(S::Long(3_000_000_000)),
        2 => prop::sample::select(&[0.0, 0.5, 1.0, 1.5, 2.5, 1000.0][..]).prop_map(S::Double),
        2 => string().prop_map(S::Str),
        1 => Just(S::True),
        1 => Just(S::False),
        1 => Just(S::Null),
        6 => prop::sample::select(&NAMES[..]).prop_map(S::Prop),
    ]
}

fn tree() -> impl Strategy<Value = S> {
    leaf().prop_recursive(5, 40, 3, |inner| {
        let b = || inner.clone().prop_map(Box::new);
        prop_oneof![
            1 => b().prop_map(S::Plus),
            2 => b().prop_map(S::Neg),
            3 => b().prop_map(S::Not),
            4 => (b(), b()).prop_map(|(l, r)| S::And(l, r)),
            4 => (b(), b()).prop_map(|(l, r)| S::Or(l, r)),
            8 => (prop::sample::select(&["=", "<>", ">", ">=", "<", "<="][..]), b(), b())
                .prop_map(|(op, l, r)| S::Cmp(op, l, r)),
            2 => (b(), any::<bool>()).prop_map(|(e, n)| S::IsNull(e, n)),
            3 => (b(), b(), b(), any::<bool>()).prop_map(|(v, l, h, n)| S::Between(v, l, h, n)),
            3 => (b(), prop::collection::vec(string(), 1..4), any::<bool>())
                .prop_map(|(e, l, n)| S::In(e, l, n)),
            2 => (prop::sample::select(&["CONTAINS", "STARTSWITH", "ENDSWITH"][..]), b(), string(), any::<bool>())
                .prop_map(|(op, e, p, n)| S::Text(op, e, p, n)),
        ]
    })
}

/// Mostly well-typed trees (the untyped ones above are mostly refused): comparisons of values
/// under AND / OR / NOT, so evaluation is exercised as much as the parse-time checks.
fn typed_tree() -> impl Strategy<Value = S> {
    let prop = || prop::sample::select(&NAMES[..]).prop_map(S::Prop);
    let value = || {
        prop_oneof![
            4 => prop(),
            2 => (0u32..4).prop_map(S::Int),
            1 => Just(S::Long(3_000_000_000)),
            2 => prop::sample::select(&[0.0, 0.5, 1.5, 2.5][..]).prop_map(S::Double),
            2 => string().prop_map(S::Str),
            1 => prop().prop_map(|p| S::Neg(Box::new(p))),
            1 => (0u32..4).prop_map(|i| S::Neg(Box::new(S::Int(i)))),
            1 => Just(S::True),
        ]
    };
    let b = |s: S| Box::new(s);
    let atom = prop_oneof![
        6 => (prop::sample::select(&["=", "<>", ">", ">=", "<", "<="][..]), value(), value())
            .prop_map(move |(op, l, r)| S::Cmp(op, b(l), b(r))),
        2 => (value(), any::<bool>()).prop_map(move |(e, n)| S::IsNull(b(e), n)),
        3 => (value(), value(), value(), any::<bool>())
            .prop_map(move |(v, l, h, n)| S::Between(b(v), b(l), b(h), n)),
        3 => (prop(), prop::collection::vec(string(), 1..4), any::<bool>())
            .prop_map(move |(e, l, n)| S::In(b(e), l, n)),
        2 => (prop::sample::select(&["CONTAINS", "STARTSWITH", "ENDSWITH"][..]), value(), string(), any::<bool>())
            .prop_map(move |(op, e, p, n)| S::Text(op, b(e), p, n)),
        1 => prop(),
        1 => prop_oneof![Just(S::True), Just(S::False), Just(S::Null)],
    ];
    atom.prop_recursive(4, 24, 2, |inner| {
        let bx = || inner.clone().prop_map(Box::new);
        prop_oneof![
            2 => bx().prop_map(S::Not),
            3 => (bx(), bx()).prop_map(|(l, r)| S::And(l, r)),
            3 => (bx(), bx()).prop_map(|(l, r)| S::Or(l, r)),
            1 => (bx(), bx()).prop_map(|(l, r)| S::Cmp("=", l, r)),
            1 => (bx(), any::<bool>()).prop_map(|(e, n)| S::IsNull(e, n)),
        ]
    })
}

/// Trees built around `TAGS = …` / `TAGS IN (…)`, for `required_tags`.
fn tag_tree() -> impl Strategy<Value = S> {
    let tags = || prop::sample::select(&["x", "1", "abc", "TRUE"][..]).prop_map(str::to_string);
    let atom = prop_oneof![
        3 => tags().prop_map(|t| S::Cmp("=", Box::new(S::Prop("TAGS")), Box::new(S::Str(t)))),
        1 => tags().prop_map(|t| S::Cmp("=", Box::new(S::Str(t)), Box::new(S::Prop("TAGS")))),
        2 => (prop::collection::vec(tags(), 1..3), any::<bool>())
            .prop_map(|(l, n)| S::In(Box::new(S::Prop("TAGS")), l, n)),
        2 => typed_tree(),
    ];
    atom.prop_recursive(3, 12, 2, |inner| {
        let bx = || inner.clone().prop_map(Box::new);
        prop_oneof![
            3 => (bx(), bx()).prop_map(|(l, r)| S::And(l, r)),
            3 => (bx(), bx()).prop_map(|(l, r)| S::Or(l, r)),
            1 => bx().prop_map(S::Not),
        ]
    })
}

/// Fully parenthesised text; `lower` spells keywords in lower case to exercise case-insensitivity.
fn print(s: &S, lower: bool) -> String {
    let kw = |k: &str| {
        if lower {
            k.to_lowercase()
        } else {
            k.to_string()
        }
    };
    let not = |n: bool| if n { kw("NOT ") } else { String::new() };
    let q = |v: &str| format!("'{}'", v.replace('\'', "''"));
    let p = |e: &S| print(e, lower);
    match s {
        S::Int(i) => i.to_string(),
        S::Long(i) => i.to_string(),
        S::Double(d) if lower => format!("{d:e}"),
        S::Double(d) => format!("{d:?}"),
        S::Str(v) => q(v),
        S::True => kw("TRUE"),
        S::False => kw("FALSE"),
        S::Null => kw("NULL"),
        S::Prop(n) => n.to_string(),
        S::Plus(e) => format!("+({})", p(e)),
        S::Neg(e) => format!("-({})", p(e)),
        S::Not(e) => format!("({}{})", kw("NOT "), p(e)),
        S::And(l, r) => format!("({} {} {})", p(l), kw("AND"), p(r)),
        S::Or(l, r) => format!("({} {} {})", p(l), kw("OR"), p(r)),
        S::Cmp(op, l, r) => format!("({} {op} {})", p(l), p(r)),
        S::IsNull(e, n) => format!("({} {}{}{})", p(e), kw("IS "), not(*n), kw("NULL")),
        S::Between(v, l, h, n) => {
            format!(
                "({} {}{} {} {} {})",
                p(v),
                not(*n),
                kw("BETWEEN"),
                p(l),
                kw("AND"),
                p(h)
            )
        }
        S::In(e, l, n) => {
            let list: Vec<String> = l.iter().map(|v| q(v)).collect();
            format!("({} {}{} ({}))", p(e), not(*n), kw("IN"), list.join(", "))
        }
        S::Text(op, e, pat, n) => format!("({} {}{} {})", p(e), not(*n), kw(op), q(pat)),
    }
}

// ---------------------------------------------------------------------------------------------
// The reference: Java objects and RocketMQ's expression classes.

#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Str(String),
}

/// A thrown Java exception.
#[derive(Debug)]
struct Thrown;

#[derive(Debug, Clone)]
enum R {
    Constant(J),
    BooleanConstant(J),
    Property(String),
    Negate(Box<R>),
    BooleanCast(Box<R>),
    Not(Box<R>),
    And(Box<R>, Box<R>),
    Or(Box<R>, Box<R>),
    Equal(Box<R>, Box<R>),
    Order(&'static str, Box<R>, Box<R>),
    In(String, Vec<String>, bool),
    Text(&'static str, Box<R>, String, bool),
}

impl R {
    fn is_boolean_expression(&self) -> bool {
        !matches!(self, R::Constant(_) | R::Property(_) | R::Negate(_))
    }
    fn constant(&self) -> Option<&J> {
        match self {
            R::Constant(v) | R::BooleanConstant(v) => Some(v),
            _ => None,
        }
    }
}

fn as_boolean(e: R) -> Result<R, Thrown> {
    if e.is_boolean_expression() {
        Ok(e)
    } else if let R::Property(_) = e {
        Ok(R::BooleanCast(Box::new(e)))
    } else {
        Err(Thrown)
    }
}

fn check_less_than_operand(e: &R) -> Result<(), Thrown> {
    if let Some(v) = e.constant() {
        return match v {
            J::Int(_) | J::Long(_) | J::Double(_) => Ok(()),
            _ => Err(Thrown),
        };
    }
    if e.is_boolean_expression() {
        return Err(Thrown);
    }
    Ok(())
}

fn order(op: &'static str, l: R, r: R) -> Result<R, Thrown> {
    check_less_than_operand(&l)?;
    check_less_than_operand(&r)?;
    Ok(R::Order(op, Box::new(l), Box::new(r)))
}

fn create_equal(l: R, r: R) -> Result<R, Thrown> {
    for e in [&l, &r] {
        if e.constant() == Some(&J::Null) {
            return Err(Thrown);
        }
    }
    let both_constant = l.constant().is_some() && r.constant().is_some();
    if both_constant && l.is_boolean_expression() && !r.is_boolean_expression() {
        return Err(Thrown);
    }
    Ok(R::Equal(Box::new(l), Box::new(r)))
}

/// What `SelectorParser` builds for a surface tree, or the exception it throws.
fn build(s: &S) -> Result<R, Thrown> {
    let bx = |e: &S| build(e).map(Box::new);
    Ok(match s {
        S::Int(i) => match i32::try_from(*i) {
            Ok(i) => R::Constant(J::Int(i)),
            Err(_) => R::Constant(J::Long(i64::from(*i))),
        },
        S::Long(i) => R::Constant(J::Long(*i)),
        // (RocketMQ's createFloat also refuses 0.0; Fjord documents that it accepts it.)
        S::Double(d) => R::Constant(J::Double(*d)),
        S::Str(v) => R::Constant(J::Str(v.clone())),
        S::True => R::BooleanConstant(J::Bool(true)),
        S::False => R::BooleanConstant(J::Bool(false)),
        S::Null => R::BooleanConstant(J::Null),
        S::Prop(n) => R::Property(n.to_string()),
        S::Plus(e) => build(e)?,
        S::Neg(e) => R::Negate(bx(e)?),
        S::Not(e) => R::Not(Box::new(as_boolean(build(e)?)?)),
        S::And(l, r) => R::And(
            Box::new(as_boolean(build(l)?)?),
            Box::new(as_boolean(build(r)?)?),
        ),
        S::Or(l, r) => R::Or(
            Box::new(as_boolean(build(l)?)?),
            Box::new(as_boolean(build(r)?)?),
        ),
        S::Cmp("=", l, r) => create_equal(build(l)?, build(r)?)?,
        S::Cmp("<>", l, r) => R::Not(Box::new(create_equal(build(l)?, build(r)?)?)),
        S::Cmp(op, l, r) => order(op, build(l)?, build(r)?)?,
        S::IsNull(e, false) => R::Equal(bx(e)?, Box::new(R::BooleanConstant(J::Null))),
        S::IsNull(e, true) => R::Not(Box::new(R::Equal(
            bx(e)?,
            Box::new(R::BooleanConstant(J::Null)),
        ))),
        S::Between(v, lo, hi, false) => {
            let (v, lo, hi) = (build(v)?, build(lo)?, build(hi)?);
            if let (Some(lv), Some(rv)) = (lo.constant(), hi.constant()) {
                if *lv == J::Null || *rv == J::Null || java_compare(rv, lv)? < 0 {
                    return Err(Thrown);
                }
            }
            R::And(
                Box::new(order(">=", v.clone(), lo)?),
                Box::new(order("<=", v, hi)?),
            )
        }
        S::Between(v, lo, hi, true) => {
            let (v, lo, hi) = (build(v)?, build(lo)?, build(hi)?);
            R::Or(
                Box::new(order("<", v.clone(), lo)?),
                Box::new(order(">", v, hi)?),
            )
        }
        S::In(e, list, not) => match build(e)? {
            R::Property(n) => R::In(n, list.clone(), *not),
            _ => return Err(Thrown),
        },
        S::Text(op, e, pat, not) => R::Text(op, bx(e)?, pat.clone(), *not),
    })
}

fn parse_java_int(s: &str) -> Result<i64, Thrown> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(Thrown);
    }
    let mut v: i128 = 0;
    for c in digits.bytes() {
        v = v * 10 + i128::from(c - b'0');
        if v > i128::from(i64::MAX) + 1 {
            return Err(Thrown);
        }
    }
    let v = if neg { -v } else { v };
    i64::try_from(v).map_err(|_| Thrown)
}

fn integer_value_of(s: &str) -> Result<i32, Thrown> {
    i32::try_from(parse_java_int(s)?).map_err(|_| Thrown)
}

fn double_value_of(s: &str) -> Result<f64, Thrown> {
    let t = s.trim_matches(|c: char| u32::from(c) <= 0x20);
    let unsigned = t.trim_start_matches(['+', '-']);
    if t.len() - unsigned.len() > 1 {
        return Err(Thrown);
    }
    let negative = t.starts_with('-');
    let magnitude = if unsigned == "NaN" {
        f64::NAN
    } else if unsigned == "Infinity" {
        f64::INFINITY
    } else {
        let body = unsigned.trim_end_matches(['f', 'F', 'd', 'D']);
        if unsigned.len() - body.len() > 1 {
            return Err(Thrown);
        }
        let (mantissa, exp) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = |x: &str| x.bytes().all(|c| c.is_ascii_digit());
        let exp_ok = exp.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && digits(e)
        });
        if !(digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty()) && exp_ok) {
            return Err(Thrown);
        }
        body.parse::<f64>().map_err(|_| Thrown)?
    };
    Ok(if negative { -magnitude } else { magnitude })
}

/// `Double.compareTo`, by its definition on `doubleToLongBits`.
fn double_compare_to(a: f64, b: f64) -> i32 {
    if a < b {
        return -1;
    }
    if a > b {
        return 1;
    }
    let bits = |x: f64| {
        if x.is_nan() {
            0x7ff8_0000_0000_0000_i64
        } else {
            x.to_bits() as i64
        }
    };
    bits(a).cmp(&bits(b)) as i32
}

fn compare_to(l: &J, r: &J) -> i32 {
    match (l, r) {
        (J::Bool(a), J::Bool(b)) => *a as i32 - *b as i32,
        (J::Int(a), J::Int(b)) => a.cmp(b) as i32,
        (J::Long(a), J::Long(b)) => a.cmp(b) as i32,
        (J::Double(a), J::Double(b)) => double_compare_to(*a, *b),
        // String.compareTo works on UTF-16 code units.
        (J::Str(a), J::Str(b)) => a.encode_utf16().cmp(b.encode_utf16()) as i32,
        _ => unreachable!("compareTo across classes"),
    }
}

fn same_class(l: &J, r: &J) -> bool {
    std::mem::discriminant(l) == std::mem::discriminant(r)
}

/// `ComparisonExpression.__compare(lv, rv, true)`, branch by branch.
fn java_compare(lv: &J, rv: &J) -> Result<i32, Thrown> {
    let (mut lv, mut rv) = (lv.clone(), rv.clone());
    if !same_class(&lv, &rv) {
        match (&lv, &rv) {
            // lv = Boolean.valueOf((String) lv): a ClassCastException.
            (J::Bool(_), J::Str(_)) => return Err(Thrown),
            (J::Bool(_), _) => return Ok(-1),
            (J::Int(i), J::Long(_)) => lv = J::Long(i64::from(*i)),
            (J::Int(i), J::Double(_)) => lv = J::Double(f64::from(*i)),
            (J::Int(_), J::Str(s)) => rv = J::Int(integer_value_of(s)?),
            (J::Long(_), J::Int(i)) => rv = J::Long(i64::from(*i)),
            (J::Long(i), J::Double(_)) => lv = J::Double(*i as f64),
            (J::Long(_), J::Str(s)) => rv = J::Long(parse_java_int(s)?),
            (J::Double(_), J::Int(i)) => rv = J::Double(f64::from(*i)),
            (J::Double(_), J::Long(i)) => rv = J::Double(*i as f64),
            (J::Double(_), J::Str(s)) => rv = J::Double(double_value_of(s)?),
            (J::Str(s), J::Bool(_)) => lv = J::Bool(s.to_lowercase() == "true"),
            (J::Str(s), J::Int(_)) => lv = J::Int(integer_value_of(s)?),
            (J::Str(s), J::Long(_)) => lv = J::Long(parse_java_int(s)?),
            (J::Str(s), J::Double(_)) => lv = J::Double(double_value_of(s)?),
            _ => return Ok(-1),
        }
    }
    Ok(compare_to(&lv, &rv))
}

fn java_equals(l: &J, r: &J) -> bool {
    same_class(l, r) && compare_to(l, r) == 0
}

fn boolean(v: J) -> Result<Option<bool>, Thrown> {
    match v {
        J::Null => Ok(None),
        J::Bool(b) => Ok(Some(b)),
        _ => Err(Thrown), // (Boolean) cast
    }
}

fn evaluate(e: &R, ctx: &HashMap<String, String>) -> Result<J, Thrown> {
    Ok(match e {
        R::Constant(v) | R::BooleanConstant(v) => v.clone(),
        R::Property(n) => ctx.get(n).map_or(J::Null, |v| J::Str(v.clone())),
        R::Negate(x) => match evaluate(x, ctx)? {
            J::Int(i) => J::Int(i.wrapping_neg()),
            J::Long(i) => J::Long(i.wrapping_neg()),
            J::Double(d) => J::Double(-d),
            _ => J::Null,
        },
        R::BooleanCast(x) => match evaluate(x, ctx)? {
            J::Null => J::Null,
            J::Bool(b) => J::Bool(b),
            _ => J::Bool(false),
        },
        R::Not(x) => match boolean(evaluate(x, ctx)?)? {
            None => J::Null,
            Some(b) => J::Bool(!b),
        },
        R::And(l, r) => {
            let lv = boolean(evaluate(l, ctx)?)?;
            if lv == Some(false) {
                return Ok(J::Bool(false));
            }
            let rv = boolean(evaluate(r, ctx)?)?;
            if rv == Some(false) {
                return Ok(J::Bool(false));
            }
            if lv.is_none() || rv.is_none() {
                return Ok(J::Null);
            }
            J::Bool(true)
        }
        R::Or(l, r) => {
            let lv = boolean(evaluate(l, ctx)?)?;
            if lv == Some(true) {
                return Ok(J::Bool(true));
            }
            let rv = boolean(evaluate(r, ctx)?)?;
            if rv == Some(true) {
                return Ok(J::Bool(true));
            }
            if lv.is_none() || rv.is_none() {
                return Ok(J::Null);
            }
            J::Bool(false)
        }
        R::Equal(l, r) => {
            let lv = evaluate(l, ctx)?;
            let rv = evaluate(r, ctx)?;
            if (lv == J::Null) != (rv == J::Null) {
                return Ok(if lv == J::Null {
                    J::Null
                } else {
                    J::Bool(false)
                });
            }
            if lv == J::Null || java_equals(&lv, &rv) {
                return Ok(J::Bool(true));
            }
            J::Bool(java_compare(&lv, &rv)? == 0)
        }
        R::Order(op, l, r) => {
            let lv = evaluate(l, ctx)?;
            if lv == J::Null {
                return Ok(J::Null);
            }
            let rv = evaluate(r, ctx)?;
            if rv == J::Null {
                return Ok(J::Null);
            }
            let answer = match (&lv, &rv) {
                (J::Str(a), J::Str(b)) => java_compare(
                    &J::Double(double_value_of(a)?),
                    &J::Double(double_value_of(b)?),
                )?,
                _ => java_compare(&lv, &rv)?,
            };
            J::Bool(match *op {
                ">" => answer > 0,
                ">=" => answer >= 0,
                "<" => answer < 0,
                _ => answer <= 0,
            })
        }
        R::In(n, list, not) => match ctx.get(n) {
            None => J::Null,
            Some(v) => J::Bool(list.contains(v) ^ not),
        },
        R::Text(op, x, search, not) => {
            if search.is_empty() {
                return Ok(J::Bool(false));
            }
            match evaluate(x, ctx)? {
                J::Str(s) => {
                    let hit = match *op {
                        "CONTAINS" => s.contains(search.as_str()),
                        "STARTSWITH" => s.starts_with(search.as_str()),
                        _ => s.ends_with(search.as_str()),
                    };
                    J::Bool(hit ^ not)
                }
                _ => J::Bool(false),
            }
        }
    })
}

/// `ExpressionMessageFilter.isMatchedByCommitLog`: exceptions and non-TRUE results don't match.
fn reference_matches(e: &R, ctx: &HashMap<String, String>) -> bool {
    matches!(evaluate(e, ctx), Ok(J::Bool(true)))
}

fn properties() -> impl Strategy<Value = HashMap<String, String>> {
    prop::collection::vec((prop::sample::select(&NAMES[..]), string()), 0..5)
        .prop_map(|kv| kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn parser_and_evaluator_agree_with_reference(
        tree in prop_oneof![tree(), typed_tree()],
        lower in any::<bool>(),
        maps in prop::collection::vec(properties(), 8),
    ) {
        let text = print(&tree, lower);
        let reference = build(&tree).and_then(as_boolean);
        let parsed = Filter::parse(FilterKind::Sql92, &text);
        match (reference, parsed) {
            (Err(Thrown), Err(_)) => {}
            (Err(Thrown), Ok(f)) => {
                prop_assert!(false, "{text} should be refused, parsed as {}", f.canonical())
            }
            (Ok(_), Err(err)) => prop_assert!(false, "{text} should parse: {err}"),
            (Ok(r), Ok(f)) => {
                let again = Filter::parse(FilterKind::Sql92, &f.canonical());
                prop_assert!(again.is_ok(), "canonical {} of {text}: {:?}", f.canonical(), again);
                let again = again.unwrap();
                prop_assert_eq!(again.canonical(), f.canonical());
                for map in &maps {
                    let want = reference_matches(&r, map);
                    prop_assert_eq!(f.matches(map), want, "{} on {:?}", text, map);
                    prop_assert_eq!(again.matches(map), want, "canonical {}", f.canonical());
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// `required_tags` is sound: a message that matches has one of the required tags.
    #[test]
    fn required_tags_never_exclude_a_match(
        tree in prop_oneof![typed_tree(), tag_tree()],
        maps in prop::collection::vec(properties(), 8),
    ) {
        let Ok(f) = Filter::parse(FilterKind::Sql92, &print(&tree, false)) else { return Ok(()) };
        let Some(tags) = f.required_tags() else { return Ok(()) };
        for map in &maps {
            if f.matches(map) {
                let tag = map.get("TAGS").map(String::as_str);
                prop_assert!(
                    tag.is_some_and(|t| tags.contains(&t)),
                    "{} matched TAGS={:?} outside {:?}", f.canonical(), tag, tags
                );
            }
        }
    }
}

#[test]
fn reference_agrees_on_handpicked_cases() {
    // Guards the reference itself against a shared misreading.
    let ctx: HashMap<String, String> = [("a".to_string(), "10".to_string())].into();
    let r = build(&S::Cmp(">", Box::new(S::Prop("a")), Box::new(S::Int(5)))).unwrap();
    assert!(reference_matches(&r, &ctx));
    let r = build(&S::Cmp("=", Box::new(S::True), Box::new(S::Prop("a")))).unwrap();
    assert!(evaluate(&r, &ctx).is_err());
    assert_eq!(double_value_of(" -1.5e1d ").unwrap(), -15.0);
    assert!(double_value_of("--1").is_err());
    assert!(integer_value_of("2147483648").is_err());
}
