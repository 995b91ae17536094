//! RocketMQ tag expressions: `*` or `TagA || TagB || …` against the message's `TAGS` property.
//!
//! As `FilterAPI.buildSubscriptionData`: the expression is split on `||` and each tag trimmed.

use crate::error::FilterError;

/// The parsed form: every message, or a message whose tag is one of a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TagFilter {
    All,
    /// Sorted and without duplicates, for binary search.
    AnyOf(Vec<String>),
}

pub(crate) fn parse(src: &str) -> Result<TagFilter, FilterError> {
    let trimmed = src.trim();
    // RocketMQ treats only "" and exactly "*" as everything; a blank expression would match
    // nothing there, which no subscriber means, so blank is everything here too.
    if trimmed.is_empty() || trimmed == "*" {
        return Ok(TagFilter::All);
    }
    let mut tags: Vec<String> = src
        .split("||")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if tags.is_empty() {
        let at = src.find("||").unwrap_or(0);
        return Err(FilterError::syntax(
            "tag expression has `||` but no tag",
            at,
        ));
    }
    tags.sort();
    tags.dedup();
    Ok(TagFilter::AnyOf(tags))
}

impl TagFilter {
    pub(crate) fn matches(&self, tag: Option<&str>) -> bool {
        match self {
            TagFilter::All => true,
            TagFilter::AnyOf(tags) => {
                tag.is_some_and(|t| tags.binary_search_by(|x| x.as_str().cmp(t)).is_ok())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse("*"), Ok(TagFilter::All));
        assert_eq!(parse(""), Ok(TagFilter::All));
        assert_eq!(parse("  "), Ok(TagFilter::All));
        assert_eq!(parse(" * "), Ok(TagFilter::All));
        assert_eq!(parse("TagA"), Ok(TagFilter::AnyOf(vec!["TagA".into()])));
        assert_eq!(
            parse(" TagB ||TagA|| TagB ||"),
            Ok(TagFilter::AnyOf(vec!["TagA".into(), "TagB".into()]))
        );
        // Inside a list `*` is an ordinary tag, as in RocketMQ.
        assert_eq!(
            parse("a || *"),
            Ok(TagFilter::AnyOf(vec!["*".into(), "a".into()]))
        );
        // A single `|` is part of a tag name.
        assert_eq!(parse("a|b"), Ok(TagFilter::AnyOf(vec!["a|b".into()])));
        for bad in ["||", " || ", "|| ||", "||||"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn matching() {
        let f = parse("TagA || TagB").unwrap();
        assert!(f.matches(Some("TagA")));
        assert!(f.matches(Some("TagB")));
        assert!(!f.matches(Some("TagC")));
        assert!(!f.matches(Some("taga")), "tags are case-sensitive");
        assert!(
            !f.matches(Some(" TagA")),
            "the message's tag is not trimmed"
        );
        assert!(!f.matches(None));
        assert!(parse("*").unwrap().matches(None));
    }
}
