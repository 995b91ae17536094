//! Tokens of RocketMQ's SQL92 selector language.
//!
//! The rules follow the token section of RocketMQ's `SelectorParser.jj` (JavaCC): maximal munch,
//! keywords before identifiers, case-insensitive keywords and exponents, `--` line comments and
//! `/* */` block comments skipped like whitespace.

use crate::error::FilterError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Not,
    And,
    Or,
    Between,
    In,
    True,
    False,
    Null,
    Is,
    Contains,
    StartsWith,
    EndsWith,
    /// `DECIMAL_LITERAL` without its `l`/`L` suffix, still as text: range is checked by the parser.
    Decimal(String),
    /// `FLOATING_POINT_LITERAL` as text.
    Float(String),
    /// A string literal with `''` already decoded to `'`.
    Str(String),
    Ident(String),
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    LParen,
    RParen,
    Comma,
    Plus,
    Minus,
    Eof,
}

impl Tok {
    /// How a token is named in error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Decimal(s) | Tok::Float(s) => format!("number {s}"),
            Tok::Str(_) => "a string literal".to_string(),
            Tok::Ident(s) => format!("identifier `{s}`"),
            Tok::Eof => "end of expression".to_string(),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::Not => "NOT",
            Tok::And => "AND",
            Tok::Or => "OR",
            Tok::Between => "BETWEEN",
            Tok::In => "IN",
            Tok::True => "TRUE",
            Tok::False => "FALSE",
            Tok::Null => "NULL",
            Tok::Is => "IS",
            Tok::Contains => "CONTAINS",
            Tok::StartsWith => "STARTSWITH",
            Tok::EndsWith => "ENDSWITH",
            Tok::Eq => "=",
            Tok::Ne => "<>",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Comma => ",",
            Tok::Plus => "+",
            Tok::Minus => "-",
            _ => "",
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

/// Splits the whole expression into tokens, ending with `Tok::Eof`.
///
/// Tokenizing everything up front (RocketMQ lexes lazily) means a bad character anywhere is an
/// error, even after a complete expression; the parser rejects trailing tokens anyway.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, FilterError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => i += 1,
            // A line comment must end with a line break (the .jj regex requires one); without
            // one, `--` is two minus signs, as in RocketMQ.
            b'-' if b.get(i + 1) == Some(&b'-')
                && b[i + 2..].iter().any(|&x| x == b'\n' || x == b'\r') =>
            {
                i += 2;
                while b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
                i += if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            b'/' if b.get(i + 1) == Some(&b'*') => match find(b, i + 2, b"*/") {
                Some(end) => i = end + 2,
                None => return Err(FilterError::syntax("unterminated /* comment", start)),
            },
            b'\'' => {
                let (s, end) = string_literal(src, i)?;
                out.push(Token {
                    tok: Tok::Str(s),
                    pos: start,
                });
                i = end;
            }
            b'0'..=b'9' | b'.' => {
                let (tok, end) = number(b, i)
                    .ok_or_else(|| FilterError::syntax("unexpected character '.'", start))?;
                out.push(Token { tok, pos: start });
                i = end;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' => {
                while i < b.len() && is_ident_char(b[i]) {
                    i += 1;
                }
                out.push(Token {
                    tok: word(&src[start..i]),
                    pos: start,
                });
            }
            _ => {
                let (tok, len) = match (c, b.get(i + 1)) {
                    (b'<', Some(b'>')) => (Tok::Ne, 2),
                    (b'<', Some(b'=')) => (Tok::Le, 2),
                    (b'>', Some(b'=')) => (Tok::Ge, 2),
                    (b'<', _) => (Tok::Lt, 1),
                    (b'>', _) => (Tok::Gt, 1),
                    (b'=', _) => (Tok::Eq, 1),
                    (b'(', _) => (Tok::LParen, 1),
                    (b')', _) => (Tok::RParen, 1),
                    (b',', _) => (Tok::Comma, 1),
                    (b'+', _) => (Tok::Plus, 1),
                    (b'-', _) => (Tok::Minus, 1),
                    _ => {
                        let ch = src[i..].chars().next().unwrap_or('?');
                        let msg = if ch == '"' {
                            "unexpected character '\"' (string literals use single quotes)"
                                .to_string()
                        } else {
                            format!("unexpected character {ch:?}")
                        };
                        return Err(FilterError::syntax(msg, start));
                    }
                };
                out.push(Token { tok, pos: start });
                i += len;
            }
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: b.len(),
    });
    Ok(out)
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn word(s: &str) -> Tok {
    // Keywords are matched before `ID` in the .jj, so they can never name a property.
    match s.to_ascii_uppercase().as_str() {
        "NOT" => Tok::Not,
        "AND" => Tok::And,
        "OR" => Tok::Or,
        "BETWEEN" => Tok::Between,
        "IN" => Tok::In,
        "TRUE" => Tok::True,
        "FALSE" => Tok::False,
        "NULL" => Tok::Null,
        "IS" => Tok::Is,
        "CONTAINS" => Tok::Contains,
        "STARTSWITH" => Tok::StartsWith,
        "ENDSWITH" => Tok::EndsWith,
        _ => Tok::Ident(s.to_string()),
    }
}

/// `'...'` with `''` standing for one quote; may span lines. Returns the text and the end offset.
fn string_literal(src: &str, open: usize) -> Result<(String, usize), FilterError> {
    let b = src.as_bytes();
    let mut out = String::new();
    let mut i = open + 1;
    let mut run = i;
    loop {
        match b.get(i) {
            None => return Err(FilterError::syntax("unterminated string literal", open)),
            Some(b'\'') if b.get(i + 1) == Some(&b'\'') => {
                out.push_str(&src[run..=i]);
                i += 2;
                run = i;
            }
            Some(b'\'') => {
                out.push_str(&src[run..i]);
                return Ok((out, i + 1));
            }
            // Quotes are ASCII, so stepping bytewise never splits a character at `run` or `i`.
            Some(_) => i += 1,
        }
    }
}

/// Maximal munch between `DECIMAL_LITERAL` and `FLOATING_POINT_LITERAL`. `None` for a lone `.`.
fn number(b: &[u8], start: usize) -> Option<(Tok, usize)> {
    let digits = |from: usize| {
        let mut j = from;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let int_end = digits(start);
    let has_int = int_end > start;
    // Float: digits "." digits? exp? | "." digits exp? | digits exp.
    let mut float_end = None;
    if b.get(int_end) == Some(&b'.') {
        let frac_end = digits(int_end + 1);
        if has_int || frac_end > int_end + 1 {
            float_end = Some(exponent(b, frac_end).unwrap_or(frac_end));
        }
    } else if has_int {
        float_end = exponent(b, int_end);
    }
    let text = |end: usize| String::from_utf8_lossy(&b[start..end]).into_owned();
    if let Some(end) = float_end {
        return Some((Tok::Float(text(end)), end));
    }
    if !has_int {
        return None;
    }
    // Decimal: "0" | [1-9][0-9]* [lL]?  — a leading zero is a literal on its own.
    if b[start] == b'0' {
        return Some((Tok::Decimal("0".to_string()), start + 1));
    }
    let end = if matches!(b.get(int_end), Some(b'l' | b'L')) {
        int_end + 1
    } else {
        int_end
    };
    Some((Tok::Decimal(text(int_end)), end))
}

/// `E` [+-]? digits+ starting at `at`; the end offset if complete.
fn exponent(b: &[u8], at: usize) -> Option<usize> {
    if !matches!(b.get(at), Some(b'e' | b'E')) {
        return None;
    }
    let mut j = at + 1;
    if matches!(b.get(j), Some(b'+' | b'-')) {
        j += 1;
    }
    let d = j;
    while j < b.len() && b[j].is_ascii_digit() {
        j += 1;
    }
    (j > d).then_some(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_follow_maximal_munch() {
        assert_eq!(toks("5"), vec![Tok::Decimal("5".into()), Tok::Eof]);
        assert_eq!(toks("12L"), vec![Tok::Decimal("12".into()), Tok::Eof]);
        assert_eq!(toks("5.5E10"), vec![Tok::Float("5.5E10".into()), Tok::Eof]);
        assert_eq!(toks("5."), vec![Tok::Float("5.".into()), Tok::Eof]);
        assert_eq!(toks(".5e-3"), vec![Tok::Float(".5e-3".into()), Tok::Eof]);
        assert_eq!(toks("5E10"), vec![Tok::Float("5E10".into()), Tok::Eof]);
        assert_eq!(toks("05.5"), vec![Tok::Float("05.5".into()), Tok::Eof]);
        assert_eq!(
            toks("007"),
            vec![
                Tok::Decimal("0".into()),
                Tok::Decimal("0".into()),
                Tok::Decimal("7".into()),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("5e"),
            vec![Tok::Decimal("5".into()), Tok::Ident("e".into()), Tok::Eof]
        );
        assert!(tokenize(".").is_err());
    }

    #[test]
    fn strings_comments_and_operators() {
        assert_eq!(toks("'it''s'"), vec![Tok::Str("it's".into()), Tok::Eof]);
        assert_eq!(toks("''"), vec![Tok::Str("".into()), Tok::Eof]);
        assert_eq!(toks("'é'"), vec![Tok::Str("é".into()), Tok::Eof]);
        assert_eq!(toks("a /* x */ <> -- c\n b"), toks("a <> b"));
        assert_eq!(
            toks("--1"),
            vec![Tok::Minus, Tok::Minus, Tok::Decimal("1".into()), Tok::Eof]
        );
        assert_eq!(toks("<=>=<>"), vec![Tok::Le, Tok::Ge, Tok::Ne, Tok::Eof]);
        assert_eq!(toks("aNd"), vec![Tok::And, Tok::Eof]);
        assert!(
            tokenize("a.b").is_err(),
            "RocketMQ identifiers have no dots"
        );
        assert!(tokenize("'open").is_err());
        assert!(tokenize("/* open").is_err());
        assert!(tokenize("a != b").is_err());
        assert!(tokenize("a = \"x\"").is_err());
        assert!(tokenize("é").is_err());
    }
}
