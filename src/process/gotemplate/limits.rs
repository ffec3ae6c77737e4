//! The engine's bounds on hostile templates, in one place (the parent
//! module re-exports them): every layer checks against these.

/// Maximum nesting of control structures and parenthesised pipelines.
pub const MAX_PARSE_DEPTH: usize = 100;
/// Maximum depth of nested {{template}} calls (Go: 100000).
pub const MAX_TEMPLATE_DEPTH: usize = 1000;
/// Native stack the executor may use before failing (bytes).
pub const MAX_STACK_BYTES: usize = 1 << 20;
/// Work budget per execution (node evaluations plus bytes/256 processed).
pub const MAX_STEPS: u64 = 1_000_000;
/// Maximum size of the output and of any string value (bytes).
pub const MAX_OUTPUT: usize = 1 << 20;
/// Maximum size of any string built by a function (bytes).
pub const MAX_STRING: usize = 1 << 20;
/// Maximum number of elements a function may build into a list.
pub const MAX_LIST: usize = 1 << 17;
/// Maximum nesting of lists/maps walked by printing, JSON, comparisons.
pub const MAX_VALUE_DEPTH: usize = 100;
/// Maximum compiled size of a regular expression (bytes).
pub const MAX_REGEX_SIZE: usize = 1 << 20;
