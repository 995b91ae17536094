//! Fjord broker core.
