//! Go's `regexp.Compile` for templates: patterns parsed by the plugin's
//! port of Go's `regexp/syntax` ([`syntax`]) and compiled for
//! `regex::bytes`, with Go's group numbering and names, and the
//! per-template cache of compiled expressions the execution context holds.
//! The matching loops the functions run are `goregex`'s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use regex::bytes::{Regex, RegexBuilder};

use super::super::goregex::syntax;
use super::limits::MAX_REGEX_SIZE;

pub(super) struct GoRegex {
    pub re: Regex,
    pub expr_empty: bool,
    /// For each group of `re` (1-based, in order): Go's group number.
    go_index: Vec<usize>,
    /// Capture names by Go's group number (index 0 is the whole match).
    pub names: Vec<Option<Vec<u8>>>,
}

type Compiled = Result<Arc<GoRegex>, String>;

/// A per-template cache of compiled expressions.
#[derive(Default)]
pub(super) struct Cache {
    map: Mutex<HashMap<Vec<u8>, Compiled>>,
}

const CACHE_MAX: usize = 256;

/// Deepest nesting of a pattern this engine compiles (Go allows 1000), in
/// Go's syntax tree and in Rust's (which counts repetitions too): the
/// translation and Rust's compiler recurse on it, and templates run on the
/// stack of whatever thread runs the stages.
const MAX_NESTING: usize = 250;

fn err_parse(code: &str, expr: &str) -> String {
    format!("error parsing regexp: {code}: `{expr}`")
}

fn nesting(re: &syntax::Regexp) -> usize {
    let mut deepest = 0;
    let mut todo = vec![(re, 1)];
    while let Some((re, depth)) = todo.pop() {
        deepest = deepest.max(depth);
        todo.extend(re.sub.iter().map(|s| (s, depth + 1)));
    }
    deepest
}

/// Go's `regexp.Compile`: parsed by the plugin's port of Go's
/// `regexp/syntax`, matched by `regex::bytes` (Go matches bytes too).
fn build(expr: &[u8]) -> Result<Arc<GoRegex>, String> {
    let src =
        std::str::from_utf8(expr).map_err(|_| syntax::invalid_utf8_error(expr).to_string())?;
    let tree = syntax::parse(src, syntax::PERL).map_err(|e| e.to_string())?;
    if nesting(&tree) > MAX_NESTING {
        return Err(err_parse("expression nests too deeply", src));
    }
    let mut rust = String::with_capacity(src.len() * 2);
    let mut caps = Vec::new();
    syntax::to_rust_captures(&tree, &mut rust, &mut caps);
    let re = RegexBuilder::new(&rust)
        .size_limit(MAX_REGEX_SIZE)
        .dfa_size_limit(MAX_REGEX_SIZE)
        .nest_limit(MAX_NESTING as u32)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => err_parse("expression too large", src),
            other => {
                let m = other.to_string();
                let last = m
                    .lines()
                    .last()
                    .unwrap_or("invalid expression")
                    .trim()
                    .to_string();
                err_parse(&last, src)
            }
        })?;
    let mut names = vec![None; syntax::num_captures(&tree) + 1];
    let mut go_index = Vec::with_capacity(caps.len());
    for (cap, name) in caps {
        if let Some(slot) = names.get_mut(cap) {
            *slot = Some(name.into_bytes());
        }
        go_index.push(cap);
    }
    Ok(Arc::new(GoRegex {
        re,
        expr_empty: expr.is_empty(),
        go_index,
        names,
    }))
}

impl GoRegex {
    /// The spans of Go's groups in a match `re` left in `locs`.
    pub(super) fn go_slots(
        &self,
        locs: &regex::bytes::CaptureLocations,
    ) -> Vec<Option<(usize, usize)>> {
        let mut slots = vec![None; self.names.len()];
        slots[0] = locs.get(0);
        for (j, &go) in self.go_index.iter().enumerate() {
            if let (Some(span), Some(slot)) = (locs.get(j + 1), slots.get_mut(go)) {
                *slot = Some(span);
            }
        }
        slots
    }
}

impl Cache {
    /// regexp.Compile through the cache (a full cache starts over).
    pub(super) fn compile(&self, expr: &[u8]) -> Compiled {
        if let Ok(map) = self.map.lock()
            && let Some(r) = map.get(expr)
        {
            return r.clone();
        }
        let r = build(expr);
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= CACHE_MAX {
                map.clear();
            }
            map.insert(expr.to_vec(), r.clone());
        }
        r
    }
}
