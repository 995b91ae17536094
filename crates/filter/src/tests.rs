//! One test per construct, and RocketMQ's own documented and tested examples.

use super::*;

fn sql(e: &str) -> Filter {
    Filter::parse(FilterKind::Sql92, e).unwrap_or_else(|err| panic!("{e:?}: {err}"))
}

fn m(e: &str, props: &[(&str, &str)]) -> bool {
    sql(e).matches(props)
}

fn refused(e: &str) -> FilterError {
    match Filter::parse(FilterKind::Sql92, e) {
        Ok(f) => panic!("{e:?} parsed as {}", f.canonical()),
        Err(err) => err,
    }
}

#[test]
fn rocketmq_documented_examples() {
    // SPEC R11 and RocketMQ's Example_Filter.md.
    let f = "a BETWEEN 0 AND 3 AND b = 'hello'";
    assert!(m(f, &[("a", "0"), ("b", "hello")]));
    assert!(m(f, &[("a", "3"), ("b", "hello")]));
    assert!(!m(f, &[("a", "4"), ("b", "hello")]));
    assert!(!m(f, &[("a", "2"), ("b", "world")]));
    assert!(!m(f, &[("b", "hello")]));
    let g = "a > 5 AND b = 'abc'";
    assert!(m(g, &[("a", "10"), ("b", "abc"), ("c", "true")]));
    assert!(!m(g, &[("a", "1"), ("b", "abc"), ("c", "true")]));
    // Example_Filter.md's consumer: "a >= 0 and a <= 3" spelled as BETWEEN.
    assert!(m("a between 0 and 3", &[("a", "1")]));
}

#[test]
fn rocketmq_parser_test_expressions() {
    // filter/src/test/java/.../ParserTest.java: all valid.
    for e in [
        "a=3 and b<>4 And c>5 AND d<=4",
        "a=3 or b<>4 Or c>5 OR d<=4",
        "a in ('3', '4', '5')",
        "(a not in ('6', '4', '5')) or (b in ('3', '4', '5'))",
        "(a between 2 and 10) AND (b not between 6 and 9)",
        "a is null",
        "a is not null",
        "a <= now",
        "a=3 and b contains 'xxx' and c not contains 'xxx'",
    ] {
        sql(e);
    }
    // ... and invalid.
    refused("a and between 2 and 10");
    refused(" a between 10 and 0");
    refused("a > 100000000000000000000000");
    assert_eq!(sql("a=3 and b<>4 And c>5 AND d<=4"), {
        let mut same = sql("a=3  and    b<>4 And c>5 AND d<=4");
        same.source = "a=3 and b<>4 And c>5 AND d<=4".into();
        same
    });
}

#[test]
fn rocketmq_expression_test_string_compare() {
    // ExpressionTest.testEvaluate_stringCompare and friends.
    let between = "a between up and low";
    assert!(!m(between, &[("a", "3.14")]));
    assert!(
        !m(between, &[("a", "3.14"), ("up", "up"), ("low", "low")]),
        "Java throws here"
    );
    assert!(!m(
        "key is not null and key between 0 and 100",
        &[("key", "con")]
    ));
    assert!(!m("a between 0 and 100", &[("a", "abc")]));
    assert!(m("a=b", &[("a", "3.14"), ("b", "3.14")]));
    assert!(!m("a<>b", &[("a", "3.14"), ("b", "3.14")]));
    assert!(m("a<>b", &[("a", "3.14"), ("b", "3.141")]));
    assert!(m("a > 3.1E10", &[("a", &(3.2 * 1e10).to_string())]));
    assert!(m("a > 3.1E10", &[("a", "3.2E10")]));
    assert!(m("TAGS = '''tag'''", &[("TAGS", "'tag'")]));
}

#[test]
fn literals() {
    assert!(m("TRUE", &[]));
    assert!(!m("FALSE", &[]));
    assert!(!m("NULL", &[]));
    assert!(m("a = 5", &[("a", "5")]));
    assert!(m("a = 5L", &[("a", "5")]));
    assert!(m("a = -5", &[("a", "-5")]));
    assert!(m("a = - -5", &[("a", "5")]));
    assert!(m("a = +5", &[("a", "5")]));
    assert!(m("a = 4294967296", &[("a", "4294967296")]));
    assert!(m(
        "a = 9223372036854775807",
        &[("a", "9223372036854775807")]
    ));
    assert!(m(
        "a = -9223372036854775807",
        &[("a", "-9223372036854775807")]
    ));
    refused("a = 9223372036854775808");
    assert!(m("a = 1.5", &[("a", "1.5")]));
    assert!(m("a = .5", &[("a", "0.5")]));
    assert!(m("a = 5.", &[("a", "5")]));
    assert!(m("a = 1e3", &[("a", "1000")]));
    assert!(m("a = 1.5E-3", &[("a", "0.0015")]));
    assert!(m("a = -2.5", &[("a", "-2.5")]));
    assert!(
        m("a > 0.0", &[("a", "0.5")]),
        "RocketMQ refuses 0.0; Fjord does not"
    );
    refused("a > 1e999");
    assert!(m("a = 'it''s'", &[("a", "it's")]));
    assert!(m("a = ''", &[("a", "")]));
    assert!(m("a = 'line\nbreak'", &[("a", "line\nbreak")]));
    assert!(m("a = 'ünïcødé ✓'", &[("a", "ünïcødé ✓")]));
    refused("a = 'open");
    refused("a = \"double\"");
}

#[test]
fn identifiers_and_keywords() {
    assert!(m("$a_1 = 'x'", &[("$a_1", "x")]));
    assert!(m("_ = 'x'", &[("_", "x")]));
    assert!(m("TAGS = 'x'", &[("TAGS", "x")]));
    assert!(
        !m("tags = 'x'", &[("TAGS", "x")]),
        "property names are case-sensitive"
    );
    assert!(m("a = 1 aNd b = 2 Or c = 3", &[("a", "1"), ("b", "2")]));
    assert!(m("a Is NoT nUlL", &[("a", "")]));
    refused("a.b = 1");
    refused("a-b = 1");
    refused("1a = 1");
    refused("in = 1");
    refused("contains = 'x'");
}

#[test]
fn comments_and_whitespace() {
    assert!(m(
        "a = 1 /* the \n comment */ AND\t-- line comment\r\n b = 2\x0c",
        &[("a", "1"), ("b", "2")]
    ));
    assert!(
        m("a = --1", &[("a", "1")]),
        "without a line break `--` is two minus signs"
    );
    refused("a = 1 /* unterminated");
}

#[test]
fn numeric_comparisons() {
    let p = [("a", "10")];
    assert!(m("a > 5", &p));
    assert!(!m("a > 10", &p));
    assert!(m("a >= 10", &p));
    assert!(m("a < 11", &p));
    assert!(!m("a < 10", &p));
    assert!(m("a <= 10", &p));
    assert!(m("a = 10", &p));
    assert!(m("a <> 11", &p));
    assert!(m("5 < a", &p));
    assert!(m("a > 9.5", &p));
    assert!(m("a > -1", &p));
    assert!(m("-a IS NULL", &p), "negating a string gives NULL");
    // Int literal: the property must parse as a Java int; otherwise the evaluation throws.
    assert!(!m("a > 5", &[("a", "10.5")]));
    assert!(
        !m("a > 5 OR TRUE", &[("a", "x")]),
        "an error fails the whole filter"
    );
    assert!(
        m("TRUE OR a > 5", &[("a", "x")]),
        "... unless OR already short-circuited"
    );
    assert!(!m("a < 5", &[("a", "3000000000")]), "beyond int: throws");
    assert!(
        m("a < 5000000000", &[("a", "3000000000")]),
        "a long literal parses longs"
    );
    assert!(
        m("a > 10.5", &[("a", " 11 ")]),
        "Double.valueOf trims and accepts ints"
    );
    assert!(m("a = 1.0", &[("a", "1")]));
    assert!(m("a > 1", &[("a", "+2")]));
    // Two properties: both parsed as doubles for ordering, compared as strings for equality.
    assert!(m("a < b", &[("a", "9"), ("b", "10")]));
    assert!(!m("a = b", &[("a", "1.0"), ("b", "1")]));
    assert!(!m("a < b", &[("a", "x"), ("b", "10")]));
    // Literal on both sides.
    assert!(m("1 < 2", &[]));
    assert!(m("1 = 1.0", &[]));
    assert!(m("2147483648 > 2147483647", &[]));
}

#[test]
fn string_comparisons() {
    let p = [("b", "hello")];
    assert!(m("b = 'hello'", &p));
    assert!(!m("b = 'Hello'", &p));
    assert!(m("b <> 'world'", &p));
    assert!(!m("b <> 'hello'", &p));
    assert!(m("'hello' = b", &p));
    // Numbers vs strings that do not parse: an error, so no match either way.
    assert!(!m("b = 5", &p));
    assert!(!m("b <> 5", &p));
    refused("b > 'a'");
    refused("b <= 'a'");
    refused("'a' < 1");
}

#[test]
fn boolean_comparisons() {
    assert!(m("c = TRUE", &[("c", "true")]));
    assert!(m("c = TRUE", &[("c", "TRUE")]));
    assert!(
        m("c = FALSE", &[("c", "no")]),
        "Boolean.valueOf: anything but true is false"
    );
    assert!(
        !m("TRUE = c", &[("c", "true")]),
        "Java's ClassCastException: no match"
    );
    assert!(m("(a = 1) = TRUE", &[("a", "1")]));
    assert!(m("(a = 1) = (b = 2)", &[("a", "1"), ("b", "2")]));
    assert!(!m("1 = TRUE", &[]));
    assert!(m("TRUE = TRUE", &[]));
    refused("TRUE = 1");
    refused("TRUE = 'x'");
    refused("a > TRUE");
    refused("(a = 1) > 0");
    refused("NOT a > 1");
}

#[test]
fn null_handling() {
    // A missing property is NULL: comparisons are unknown, so nothing matches ...
    for e in [
        "a = 1",
        "a <> 1",
        "a > 1",
        "a < 1",
        "a = 'x'",
        "a <> 'x'",
        "a IN ('x')",
    ] {
        assert!(!m(e, &[]), "{e}");
        assert!(!m(&format!("NOT ({e})"), &[]), "NOT {e}");
    }
    assert!(m("a IS NULL", &[]));
    assert!(!m("a IS NOT NULL", &[]));
    assert!(m("a IS NOT NULL", &[("a", "")]));
    assert!(!m("a IS NULL", &[("a", "")]));
    assert!(m("(a > 1) IS NULL", &[]));
    assert!(m("a > 1 IS NULL", &[]), "IS NULL binds looser than >");
    // ... except Java's asymmetric `=`: NULL only on the right is FALSE, not unknown.
    assert!(m("NOT ('x' = a)", &[]));
    assert!(m("'x' <> a", &[]));
    refused("a = NULL");
    refused("NULL = a");
    refused("a <> NULL");
    refused("a > NULL");
    // Three-valued AND / OR.
    assert!(!m("a = 1 AND TRUE", &[]));
    assert!(m("a = 1 OR TRUE", &[]));
    assert!(!m("a = 1 OR FALSE", &[]));
    assert!(!m("a = 1 AND FALSE", &[]));
    assert!(m("NOT (a = 1 AND FALSE)", &[]));
    assert!(!m("NOT (a = 1 OR FALSE)", &[]));
    assert!(m("NOT NULL IS NULL", &[]));
}

#[test]
fn properties_as_booleans() {
    // A bare property is cast: FALSE when present (values are strings), NULL when absent.
    assert!(!m("c", &[("c", "true")]));
    assert!(m("NOT c", &[("c", "true")]));
    assert!(!m("NOT c", &[]));
    assert!(m("c OR TRUE", &[]));
    assert!(m("(c) OR TRUE", &[]));
    refused("5");
    refused("'x'");
    refused("-a");
    refused("a = 1 AND 5");
    refused("NOT 5");
}

#[test]
fn between() {
    let f = "a BETWEEN 2 AND 10";
    assert!(m(f, &[("a", "2")]));
    assert!(m(f, &[("a", "10")]));
    assert!(!m(f, &[("a", "1")]));
    assert!(!m(f, &[("a", "11")]));
    assert!(!m(f, &[]));
    let g = "a NOT BETWEEN 2 AND 10";
    assert!(m(g, &[("a", "1")]));
    assert!(m(g, &[("a", "11")]));
    assert!(!m(g, &[("a", "5")]));
    assert!(!m(g, &[]));
    assert!(m("a BETWEEN -1.5 AND 1.5", &[("a", "0.25")]));
    assert!(m(
        "a BETWEEN b AND c",
        &[("a", "2"), ("b", "1"), ("c", "3")]
    ));
    assert!(m("a BETWEEN 1 AND 3 AND b = 1", &[("a", "2"), ("b", "1")]));
    assert!(m("a BETWEEN 1 AND 1", &[("a", "1")]));
    refused("a BETWEEN 3 AND 1");
    assert!(
        m("a NOT BETWEEN 3 AND 1", &[("a", "2")]),
        "RocketMQ checks only BETWEEN"
    );
    refused("a BETWEEN 1.5 AND 1");
    // Only constant bounds are checked, as in RocketMQ: -1 is a negation, not a constant.
    assert!(!m("a BETWEEN -1 AND -3", &[("a", "-2")]));
    refused("a BETWEEN 'a' AND 'b'");
    refused("a BETWEEN NULL AND 1");
    refused("a BETWEEN 1");
    refused("a BETWEEN 1 OR 2");
}

#[test]
fn in_lists() {
    let f = "a IN ('x', 'y', 'it''s')";
    assert!(m(f, &[("a", "x")]));
    assert!(m(f, &[("a", "it's")]));
    assert!(!m(f, &[("a", "z")]));
    assert!(!m(f, &[]));
    let g = "a NOT IN ('x', 'y')";
    assert!(m(g, &[("a", "z")]));
    assert!(!m(g, &[("a", "x")]));
    assert!(!m(g, &[]));
    assert!(m("(a) IN ('x')", &[("a", "x")]));
    assert!(m("a IN ('1','2','3','4','5','6')", &[("a", "6")]));
    assert!(m("a IN ('z', 'b', 'z', 'a')", &[("a", "z")]));
    assert_eq!(sql("a IN ('z', 'b', 'z')").canonical(), "(a IN ('b', 'z'))");
    refused("a IN ()");
    refused("a IN (1, 2)");
    refused("a IN 'x'");
    refused("a IN ('x',)");
    refused("'x' IN ('x')");
    refused("a = 1 IN ('x')");
}

#[test]
fn text_operators() {
    let p = [("v", "axb")];
    assert!(m("v CONTAINS 'x'", &p));
    assert!(m("v STARTSWITH 'ax'", &p));
    assert!(m("v ENDSWITH 'xb'", &p));
    assert!(!m("v CONTAINS 'y'", &p));
    assert!(!m("v STARTSWITH 'b'", &p));
    assert!(!m("v ENDSWITH 'a'", &p));
    assert!(m("v NOT CONTAINS 'y'", &p));
    assert!(m("v NOT STARTSWITH 'b'", &p));
    assert!(m("v NOT ENDSWITH 'a'", &p));
    assert!(!m("v NOT CONTAINS 'x'", &p));
    // Empty pattern: FALSE, for the NOT forms too; a missing property: FALSE, not unknown.
    for e in [
        "v CONTAINS ''",
        "v NOT CONTAINS ''",
        "v STARTSWITH ''",
        "v NOT ENDSWITH ''",
    ] {
        assert!(!m(e, &p), "{e}");
    }
    assert!(!m("w CONTAINS 'x'", &p));
    assert!(!m("w NOT CONTAINS 'x'", &p));
    assert!(m("NOT (w CONTAINS 'x')", &p));
    assert!(!m("5 CONTAINS '5'", &p), "a non-string is FALSE");
    assert!(m("'abc' CONTAINS 'b'", &p));
    assert!(m(
        "v contains 'x' AND v startswith 'a' AND v endswith 'b'",
        &p
    ));
    refused("v CONTAINS x");
    refused("v CONTAINS 5");
    refused("v NOT LIKE 'x'");
}

#[test]
fn logic_and_precedence() {
    let p = [("a", "1"), ("b", "2")];
    assert!(
        m("a = 1 OR b = 3 AND b = 4", &p),
        "AND binds tighter than OR"
    );
    assert!(!m("(a = 1 OR b = 3) AND b = 4", &p));
    assert!(m("NOT a = 2 OR TRUE", &p));
    assert!(m("NOT (a = 2)", &p));
    assert!(m("NOT NOT (a = 1)", &p));
    assert!(m("((((a = 1))))", &p));
    assert!(m("a = 1 AND (b = 2 AND (a = 1 OR b = 9))", &p));
    assert!(!m("NOT (a = 1)", &p));
    assert!(
        m("a = b > 1", &[("a", "true"), ("b", "2")]),
        "a = (b > 1), 'true' read as a Boolean"
    );
    assert!(!m("a = b > 1", &[("a", "1"), ("b", "2")]));
    assert!(m("c = 1 = FALSE", &[("c", "2")]), "(c = 1) = FALSE");
    refused("a IS NULL > 1");
    refused("a IS NULL BETWEEN 1 AND 2");
    refused("a = 1 AND");
    refused("a = 1 OR OR b = 2");
    refused("(a = 1");
    refused("a = 1)");
    refused("a = 1 b = 2");
    refused("a NOT b");
    refused("a IS 1");
    refused("");
    refused("   ");
}

#[test]
fn errors_say_where() {
    let e = refused("a = 1 AND b = ");
    assert_eq!(e.position(), Some(14));
    assert!(e.to_string().contains("position 14"), "{e}");
    let e = refused("a = 1 b");
    assert_eq!(e.position(), Some(6));
    let e = refused("a = 'x' AND b ! 1");
    assert_eq!(e.position(), Some(14));
    assert!(e.to_string().contains("'!'"), "{e}");
}

#[test]
fn limits() {
    let long = format!("a = '{}'", "x".repeat(MAX_EXPRESSION_LEN));
    assert!(matches!(
        Filter::parse(FilterKind::Sql92, &long),
        Err(FilterError::TooLong { .. })
    ));
    assert!(matches!(
        Filter::parse(FilterKind::Tag, &"t||".repeat(30_000)),
        Err(FilterError::TooLong { .. })
    ));
    let deep = |n: usize| format!("{}a = 1{}", "(".repeat(n), ")".repeat(n));
    sql(&deep(MAX_DEPTH - 1));
    assert!(matches!(
        refused(&deep(MAX_DEPTH + 1)),
        FilterError::TooDeep { .. }
    ));
    assert!(matches!(
        refused(&"NOT ".repeat(10_000)),
        FilterError::TooDeep { .. }
    ));
    assert!(matches!(
        refused(&"-".repeat(20_000)),
        FilterError::TooDeep { .. }
    ));
    assert!(matches!(
        refused(&"(".repeat(50_000)),
        FilterError::TooDeep { .. }
    ));
    // Chains that RocketMQ nests to the left are bounded too ...
    let chain = format!("a{}", " IS NULL".repeat(200));
    assert!(matches!(refused(&chain), FilterError::TooDeep { .. }));
    // ... except AND / OR, which are flattened: thousands of terms are fine.
    let wide = vec!["a = 1"; 5000].join(" AND ");
    assert!(sql(&wide).matches(&[("a", "1")][..]));
    let wide = vec!["a = 1"; 5000].join(" OR ");
    assert!(!sql(&wide).matches(&[("a", "2")][..]));
}

#[test]
fn tag_filters() {
    let f = Filter::parse(FilterKind::Tag, "TagA || TagB").unwrap();
    assert!(f.matches(&[(TAGS, "TagA")][..]));
    assert!(!f.matches(&[(TAGS, "TagC")][..]));
    assert!(!f.matches(&[("other", "TagA")][..]));
    assert!(Filter::parse(FilterKind::Tag, "*").unwrap().matches_all());
    assert!(Filter::all().matches_fn(|_| None));
    assert!(Filter::parse(FilterKind::Tag, "||").is_err());
}

#[test]
fn required_tags() {
    let tags = |k, e| {
        let f = Filter::parse(k, e).unwrap();
        f.required_tags().map(|v| v.join(","))
    };
    use FilterKind::{Sql92, Tag};
    assert_eq!(tags(Tag, "*"), None);
    assert_eq!(tags(Tag, "b || a || b"), Some("a,b".to_string()));
    assert_eq!(tags(Sql92, "TAGS = 'x'"), Some("x".to_string()));
    assert_eq!(tags(Sql92, "'x' = TAGS"), Some("x".to_string()));
    assert_eq!(
        tags(Sql92, "a = 1 AND TAGS IN ('y', 'x')"),
        Some("x,y".to_string())
    );
    assert_eq!(
        tags(Sql92, "TAGS IN ('x', 'y') AND (TAGS = 'y' AND a = 1)"),
        Some("y".to_string())
    );
    assert_eq!(
        tags(Sql92, "TAGS = 'x' AND TAGS = 'y'"),
        Some("".to_string())
    );
    assert_eq!(
        tags(Sql92, "TAGS = 'x' OR TAGS IN ('y')"),
        Some("x,y".to_string())
    );
    assert_eq!(tags(Sql92, "TAGS = 'x' OR a = 1"), None);
    assert_eq!(tags(Sql92, "TAGS NOT IN ('x')"), None);
    assert_eq!(tags(Sql92, "TAGS <> 'x'"), None);
    assert_eq!(tags(Sql92, "NOT TAGS = 'x'"), None);
    assert_eq!(tags(Sql92, "a = 1"), None);
}

#[test]
fn kinds_and_property_sources() {
    assert_eq!("tag".parse(), Ok(FilterKind::Tag));
    assert_eq!("SQL92".parse(), Ok(FilterKind::Sql92));
    assert!(matches!(
        "sql".parse::<FilterKind>(),
        Err(FilterError::UnknownKind(_))
    ));
    assert_eq!(FilterKind::Sql92.to_string(), "sql92");
    let f = sql("a = 'x'");
    let map: HashMap<String, String> = [("a".to_string(), "x".to_string())].into();
    assert!(f.matches(&map));
    let tree: BTreeMap<String, String> = map.clone().into_iter().collect();
    assert!(f.matches(&tree));
    let headers = vec![
        ("a".to_string(), "y".to_string()),
        ("a".to_string(), "x".to_string()),
    ];
    assert!(f.matches(&headers), "the last header of a name wins");
    assert!(f.matches_fn(|k| (k == "a").then_some("x")));
    assert_eq!(f.to_string(), "sql92:a = 'x'");
    assert_eq!(
        sql("a=1 and (b<>2 or not c)").canonical(),
        "((a = 1) AND ((b <> 2) OR NOT c))"
    );
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Filter>();
}
