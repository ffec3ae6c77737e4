//! Go's `regexp` (RE2 syntax) as the stages compile it, on Rust's `regex`
//! crate, which implements the same syntax and the same guarantee: matching
//! is linear in the input, whatever the pattern. Sizes are bounded, so a
//! pattern from a user's config cannot take the plugin's memory.

use regex::{Regex, RegexBuilder};

/// Largest compiled program accepted for one pattern.
const SIZE_LIMIT: usize = 4 << 20;
/// Largest lazy DFA cache for one pattern.
const DFA_SIZE_LIMIT: usize = 2 << 20;

/// Compiles `pattern` as Go's `regexp.Compile` would accept it.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => {
                format!("the regular expression is too large (compiled over {limit} bytes)")
            }
            other => other.to_string(),
        })
}

#[allow(dead_code)] // for label matchers and relabel rules
/// Compiles `pattern` to match whole values only, as Prometheus anchors
/// label matchers and relabel regexes: `^(?:pattern)$`.
pub fn compile_anchored(pattern: &str) -> Result<Regex, String> {
    compile(&format!("^(?:{pattern})$"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_pattern_is_refused_not_compiled() {
        let err = compile("(a{100}){100}{100}").unwrap_err();
        assert!(
            err.contains("too large") || err.contains("exceeds"),
            "{err}"
        );
        assert!(compile("(?P<level>\\w+)").is_ok());
        assert!(compile("(").is_err());
    }
}
