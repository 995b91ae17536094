//! Why an expression (or a filter type name) was refused.

/// An expression that cannot become a [`Filter`](crate::Filter), or an unknown filter type.
///
/// Positions are 0-based byte offsets into the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Longer than [`MAX_EXPRESSION_LEN`](crate::MAX_EXPRESSION_LEN).
    #[error("filter expression is {len} bytes; the limit is {max}")]
    TooLong { len: usize, max: usize },
    /// Nested deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    #[error("filter expression nests deeper than {max} levels at position {position}")]
    TooDeep { max: usize, position: usize },
    /// Not a valid tag or SQL92 expression.
    #[error("invalid filter expression: {message} at position {position}")]
    Syntax { message: String, position: usize },
    /// A filter type other than `tag` or `sql92`.
    #[error("unknown filter type {0:?}: expected `tag` or `sql92`")]
    UnknownKind(String),
}

impl FilterError {
    pub(crate) fn syntax(message: impl Into<String>, position: usize) -> FilterError {
        FilterError::Syntax {
            message: message.into(),
            position,
        }
    }

    /// Where in the expression the problem was found, if it is about one place.
    pub fn position(&self) -> Option<usize> {
        match self {
            FilterError::TooDeep { position, .. } | FilterError::Syntax { position, .. } => {
                Some(*position)
            }
            FilterError::TooLong { .. } | FilterError::UnknownKind(_) => None,
        }
    }
}
