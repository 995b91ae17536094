//! The parser is total and the evaluator cannot fail: whatever the input, parsing gives a filter
//! or an error (never a panic, never a stack overflow), and a parsed filter evaluates on any
//! properties and survives a round trip through its canonical text.

use fjord_filter::{Filter, FilterKind, MAX_DEPTH};
use proptest::prelude::*;

const VALID: [&str; 12] = [
    "a BETWEEN 0 AND 3 AND b = 'hello'",
    "TAGS IN ('TagA', 'TagB') AND price >= 10.5",
    "(a not in ('6', '4', '5')) or (b in ('3', '4', '5'))",
    "a IS NOT NULL AND NOT (b <> 'x' OR c < -2)",
    "name STARTSWITH 'fj' AND name NOT ENDSWITH 'x' OR tag CONTAINS 'it''s'",
    "x = 1.5E-3 /* comment */ OR y = 9223372036854775807L -- line\n",
    "a = TRUE OR (b = FALSE) OR c IS NULL",
    "-a < - -2 AND +b > .5",
    "TagA || TagB",
    "*",
    "a NOT BETWEEN -1 AND 1",
    "((((a = 1))))",
];

const TOKENS: [&str; 40] = [
    "a",
    "TAGS",
    "$x",
    "'x'",
    "''",
    "'it''s'",
    "(",
    ")",
    "AND",
    "or",
    "NOT",
    "=",
    "<>",
    ">",
    ">=",
    "<",
    "<=",
    "BETWEEN",
    "IN",
    ",",
    "IS",
    "NULL",
    "TRUE",
    "false",
    "CONTAINS",
    "STARTSWITH",
    "ENDSWITH",
    "-",
    "+",
    "--",
    "/*",
    "*/",
    "1",
    "1.5e3",
    "9223372036854775808",
    ".",
    "e",
    "\n",
    "'",
    "||",
];

fn maps() -> Vec<Vec<(&'static str, &'static str)>> {
    vec![
        vec![],
        vec![("a", "1"), ("b", "hello"), ("TAGS", "TagA")],
        vec![("a", "x"), ("b", "2.5"), ("c", "true"), ("price", "11")],
        vec![("a", "-3"), ("x", " 1e3 "), ("y", "NaN"), ("name", "fjord")],
    ]
}

/// Parses as both kinds; anything that parses must evaluate and round-trip.
fn exercise(input: &str) -> Result<(), TestCaseError> {
    for kind in [FilterKind::Tag, FilterKind::Sql92] {
        let f = match Filter::parse(kind, input) {
            Ok(f) => f,
            Err(err) => {
                // Positions point into the input, at a character boundary.
                if let Some(pos) = err.position() {
                    prop_assert!(input.is_char_boundary(pos), "{input:?}: {err}");
                }
                prop_assert!(!err.to_string().is_empty());
                continue;
            }
        };
        let canonical = f.canonical();
        let again = Filter::parse(kind, &canonical);
        prop_assert!(
            again.is_ok(),
            "{input:?} → {canonical:?}: {:?}",
            again.err()
        );
        let again = again.unwrap();
        prop_assert_eq!(again.canonical(), canonical.clone());
        for m in maps() {
            prop_assert_eq!(f.matches(&m[..]), again.matches(&m[..]), "{:?}", canonical);
        }
        let _ = f.required_tags();
    }
    Ok(())
}

fn mutate(base: &str, edits: &[(u16, u16, usize)]) -> String {
    let mut s: Vec<char> = base.chars().collect();
    for &(kind, at, tok) in edits {
        let at = usize::from(at) % (s.len() + 1);
        match kind % 4 {
            0 => {
                let end = (at + tok % 5 + 1).min(s.len());
                s.drain(at..end);
            }
            1 => {
                let t: Vec<char> = TOKENS[tok % TOKENS.len()].chars().collect();
                s.splice(at..at, t);
            }
            2 => s.truncate(at),
            _ => {
                let end = (at + tok % 9).min(s.len());
                let dup: Vec<char> = s[at..end].to_vec();
                s.splice(at..at, dup);
            }
        }
    }
    s.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings(s in any::<String>()) {
        exercise(&s)?;
    }

    #[test]
    fn arbitrary_bytes(b in prop::collection::vec(any::<u8>(), 0..200)) {
        exercise(&String::from_utf8_lossy(&b))?;
    }

    #[test]
    fn token_soup(toks in prop::collection::vec((0..TOKENS.len(), 0u8..3), 0..30)) {
        let mut s = String::new();
        for (t, sep) in toks {
            s.push_str(TOKENS[t]);
            s.push_str(["", " ", "\t"][usize::from(sep)]);
        }
        exercise(&s)?;
    }

    #[test]
    fn mutated_valid_expressions(
        base in prop::sample::select(&VALID[..]),
        edits in prop::collection::vec((any::<u16>(), any::<u16>(), any::<usize>()), 1..4),
    ) {
        exercise(&mutate(base, &edits))?;
    }
}

#[test]
fn the_valid_seeds_are_valid() {
    for e in VALID {
        let kind = if e.contains("||") || e == "*" {
            FilterKind::Tag
        } else {
            FilterKind::Sql92
        };
        Filter::parse(kind, e).unwrap_or_else(|err| panic!("{e}: {err}"));
    }
}

/// The depth limit keeps parsing and evaluation within a small stack: tokio's worker threads
/// have 2 MiB; this allows half of that, in an unoptimised build (measured: under 512 KiB for
/// the deepest of these unoptimised, under 256 KiB optimised).
#[test]
fn deepest_accepted_expressions_fit_a_small_stack() {
    let inputs = [
        format!(
            "{}a = 1{}",
            "(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        ),
        format!("{}TRUE", "NOT ".repeat(MAX_DEPTH - 1)),
        format!("{}a IS NULL", "NOT (".repeat(MAX_DEPTH / 2 - 1)) + &")".repeat(MAX_DEPTH / 2 - 1),
        format!("a = {}1", "-".repeat(MAX_DEPTH - 2)),
        format!("a{}", " IS NULL".repeat(MAX_DEPTH - 1)),
        format!("{}a = 1", "(a = 1 AND ".repeat(MAX_DEPTH / 2 - 2))
            + &")".repeat(MAX_DEPTH / 2 - 2),
    ];
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            for input in &inputs {
                let f = Filter::parse(FilterKind::Sql92, input)
                    .unwrap_or_else(|e| panic!("{}…: {e}", &input[..40.min(input.len())]));
                f.matches(&[("a", "1")][..]);
                f.matches(&[("b", "1")][..]);
                let _ = f.canonical();
                let _ = f.clone();
            }
            // And the first levels past the limit are refused, not overflowed.
            for input in [
                format!(
                    "{}a = 1{}",
                    "(".repeat(MAX_DEPTH + 1),
                    ")".repeat(MAX_DEPTH + 1)
                ),
                format!("{}TRUE", "NOT ".repeat(MAX_DEPTH + 1)),
                "(".repeat(60_000),
            ] {
                assert!(Filter::parse(FilterKind::Sql92, &input).is_err());
            }
        })
        .unwrap()
        .join()
        .unwrap();
}
