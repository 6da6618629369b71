//! TOUCH key [key ...]: how many of the keys exist (each read refreshes it in its owners' LRU).

pub(super) use super::exists::{run, ARITY};
