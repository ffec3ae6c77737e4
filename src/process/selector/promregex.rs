//! Prometheus' `labels.FastRegexMatcher` (model/labels/regexp.go as vendored in Loki
//! v3.7.6), ported over the Go parse tree of `goregex`. Most of its shortcuts give the
//! same answers as the anchored regex; a few do not, and those are kept on purpose:
//! case-insensitive prefixes and suffixes are compared on byte lengths
//! (`(?i)s.*` does not match "ſx"), and large case-insensitive alternations compare
//! lower-cased values (Go also NFKD-normalises them: not done here, a documented gap).

use std::collections::{HashMap, HashSet};

use super::super::goregex::syntax::{self as goregex, FOLD_CASE, Op, Regexp};

const MAX_SET_MATCHES: usize = 256;
const MIN_EQUAL_MULTI_STRING_MATCHER_MAP_THRESHOLD: usize = 16;

/// Go's utf8.DecodeRune on bytes: invalid or truncated sequences give (U+FFFD, 1).
fn decode(b: &[u8]) -> (u32, usize) {
    if b.is_empty() {
        return (0xFFFD, 0);
    }
    let n = match b[0] {
        0x00..=0x7F => return (b[0] as u32, 1),
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (0xFFFD, 1),
    };
    if b.len() < n {
        return (0xFFFD, 1);
    }
    match std::str::from_utf8(&b[..n]) {
        Ok(s) => (s.chars().next().map_or(0xFFFD, |c| c as u32), n),
        Err(_) => (0xFFFD, 1),
    }
}

/// Go's strings.EqualFold on byte strings.
pub fn equal_fold(mut s: &[u8], mut t: &[u8]) -> bool {
    while !s.is_empty() {
        if t.is_empty() {
            return false;
        }
        let (sr, n) = decode(s);
        let (tr, m) = decode(t);
        s = &s[n..];
        t = &t[m..];
        if !goregex::fold_eq(sr, tr) {
            return false;
        }
    }
    t.is_empty()
}

fn has_prefix_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && equal_fold(&s[..prefix.len()], prefix)
}

fn has_suffix_ci(s: &[u8], suffix: &[u8]) -> bool {
    s.len() >= suffix.len() && equal_fold(&s[s.len() - suffix.len()..], suffix)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    if let (Ok(h), Ok(n)) = (std::str::from_utf8(hay), std::str::from_utf8(needle)) {
        return h.find(n);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Go's `unicode.ToLower` over every rune (invalid bytes become U+FFFD); ASCII-only input
/// is lower-cased byte by byte. (Go's toNormalisedLower also applies NFKD first.)
fn to_lower(s: &[u8]) -> Vec<u8> {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut b = s;
    while !b.is_empty() {
        let (r, n) = decode(b);
        b = &b[n..];
        let c = char::from_u32(r).unwrap_or('\u{FFFD}');
        let l = c.to_lowercase().next().unwrap_or(c);
        let mut buf = [0u8; 4];
        out.extend_from_slice(l.encode_utf8(&mut buf).as_bytes());
    }
    out
}

fn runes_to_bytes(runes: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(runes.len());
    for &r in runes {
        let c = char::from_u32(r).unwrap_or('\u{FFFD}');
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    out
}

/// Prometheus' StringMatcher implementations.
#[derive(Debug, Clone)]
enum Sm {
    Empty,
    True,
    AnyNonEmpty {
        nl: bool,
    },
    AnyWithoutNl,
    ZeroOrOne {
        nl: bool,
    },
    Equal {
        s: Vec<u8>,
        cs: bool,
    },
    Or(Vec<Sm>),
    Contains {
        subs: Vec<Vec<u8>>,
        left: Option<Box<Sm>>,
        right: Option<Box<Sm>>,
    },
    PrefixCs {
        prefix: Vec<u8>,
        right: Box<Sm>,
    },
    PrefixCi {
        prefix: Vec<u8>,
        right: Box<Sm>,
    },
    Suffix {
        left: Box<Sm>,
        suffix: Vec<u8>,
        cs: bool,
    },
    MultiSlice {
        values: Vec<Vec<u8>>,
        cs: bool,
    },
    MultiMap {
        values: HashSet<Vec<u8>>,
        prefixes: HashMap<Vec<u8>, Vec<Sm>>,
        min_prefix_len: usize,
        cs: bool,
    },
}

impl Sm {
    fn matches(&self, s: &[u8]) -> bool {
        match self {
            Sm::Empty => s.is_empty(),
            Sm::True => true,
            Sm::AnyNonEmpty { nl } => !s.is_empty() && (*nl || !s.contains(&b'\n')),
            Sm::AnyWithoutNl => !s.contains(&b'\n'),
            Sm::ZeroOrOne { nl } => {
                let (r, size) = decode(s);
                if r == 0xFFFD {
                    return size == s.len();
                } else if size < s.len() {
                    return false;
                }
                if *nl || s.is_empty() {
                    return true;
                }
                s[0] != b'\n'
            }
            Sm::Equal { s: v, cs } => {
                if *cs {
                    v.as_slice() == s
                } else {
                    equal_fold(v, s)
                }
            }
            Sm::Or(ms) => ms.iter().any(|m| m.matches(s)),
            Sm::Contains { subs, left, right } => {
                for sub in subs {
                    match (left, right) {
                        (Some(l), Some(r)) => {
                            let mut start = 0;
                            while let Some(p) = find(&s[start..], sub) {
                                let pos = start + p;
                                if l.matches(&s[..pos]) && r.matches(&s[pos + sub.len()..]) {
                                    return true;
                                }
                                start = pos + 1;
                                if start > s.len() {
                                    break;
                                }
                            }
                        }
                        (Some(l), None) => {
                            if s.ends_with(sub) && l.matches(&s[..s.len() - sub.len()]) {
                                return true;
                            }
                        }
                        (None, Some(r)) => {
                            if s.starts_with(sub) && r.matches(&s[sub.len()..]) {
                                return true;
                            }
                        }
                        (None, None) => {}
                    }
                }
                false
            }
            Sm::PrefixCs { prefix, right } => {
                s.starts_with(prefix) && right.matches(&s[prefix.len()..])
            }
            Sm::PrefixCi { prefix, right } => {
                has_prefix_ci(s, prefix) && right.matches(&s[prefix.len()..])
            }
            Sm::Suffix { left, suffix, cs } => {
                if *cs && !s.ends_with(suffix) {
                    return false;
                }
                if !*cs && !has_suffix_ci(s, suffix) {
                    return false;
                }
                left.matches(&s[..s.len() - suffix.len()])
            }
            Sm::MultiSlice { values, cs } => {
                if *cs {
                    values.iter().any(|v| v.as_slice() == s)
                } else {
                    values.iter().any(|v| equal_fold(s, v))
                }
            }
            Sm::MultiMap {
                values,
                prefixes,
                min_prefix_len,
                cs,
            } => {
                if !values.is_empty() {
                    let hit = if *cs {
                        values.contains(s)
                    } else {
                        values.contains(&to_lower(s))
                    };
                    if hit {
                        return true;
                    }
                }
                if *min_prefix_len > 0 && s.len() >= *min_prefix_len {
                    let p = &s[..*min_prefix_len];
                    let ms = if *cs {
                        prefixes.get(p)
                    } else {
                        prefixes.get(&to_lower(p))
                    };
                    if let Some(ms) = ms {
                        return ms.iter().any(|m| m.matches(s));
                    }
                }
                false
            }
        }
    }
}

struct MultiBuilder {
    sm: Sm,
}

impl MultiBuilder {
    fn new(cs: bool, est_size: usize, est_prefixes: usize, min_prefix_len: usize) -> Self {
        let sm = if est_size < MIN_EQUAL_MULTI_STRING_MATCHER_MAP_THRESHOLD && est_prefixes == 0 {
            Sm::MultiSlice {
                values: Vec::with_capacity(est_size),
                cs,
            }
        } else {
            Sm::MultiMap {
                values: HashSet::with_capacity(est_size),
                prefixes: HashMap::new(),
                min_prefix_len,
                cs,
            }
        };
        MultiBuilder { sm }
    }

    fn add(&mut self, s: &[u8]) {
        match &mut self.sm {
            Sm::MultiSlice { values, .. } => values.push(s.to_vec()),
            Sm::MultiMap { values, cs, .. } => {
                values.insert(if *cs { s.to_vec() } else { to_lower(s) });
            }
            _ => {}
        }
    }

    fn add_prefix(&mut self, prefix: &[u8], matcher: Sm) {
        if let Sm::MultiMap {
            prefixes,
            min_prefix_len,
            cs,
            ..
        } = &mut self.sm
        {
            let p = &prefix[..*min_prefix_len];
            let key = if *cs { p.to_vec() } else { to_lower(p) };
            prefixes.entry(key).or_default().push(matcher);
        }
    }
}

fn quote_meta_is_identity(s: &[u8]) -> bool {
    !s.iter().any(|c| b"\\.+*?()|[]{}^$".contains(c))
}

/// optimizeAlternatingLiterals.
fn optimize_alternating_literals(s: &[u8]) -> Option<Sm> {
    if s.is_empty() {
        return Some(Sm::Empty);
    }
    let est = s.iter().filter(|&&c| c == b'|').count() + 1;
    if est == 1 {
        if quote_meta_is_identity(s) {
            return Some(Sm::Equal {
                s: s.to_vec(),
                cs: true,
            });
        }
        return None;
    }
    let mut multi = MultiBuilder::new(true, est, 0, 0);
    for part in s.split(|&c| c == b'|') {
        if !quote_meta_is_identity(part) {
            return None;
        }
        multi.add(part);
    }
    Some(multi.sm)
}

fn is_match_any(re: &Regexp) -> bool {
    re.op == Op::Star && re.sub[0].op == Op::AnyChar
}

fn is_cs(re: &Regexp) -> bool {
    re.flags & FOLD_CASE == 0
}

fn is_cs_literal(re: &Regexp) -> bool {
    re.op == Op::Literal && is_cs(re)
}

fn clear_capture(re: &mut Regexp) {
    while re.op == Op::Capture {
        let sub = re.sub.pop().expect("capture has a sub");
        *re = sub;
    }
}

fn clear_begin_end_text(re: &mut Regexp) {
    if re.op == Op::Alternate || re.sub.is_empty() {
        return;
    }
    if re.sub.len() == 1 && matches!(re.sub[0].op, Op::BeginText | Op::EndText) {
        re.op = Op::EmptyMatch;
        re.sub.clear();
        return;
    }
    if re.sub[0].op == Op::BeginText {
        re.sub.remove(0);
    }
    if re.sub.last().is_some_and(|s| s.op == Op::EndText) {
        re.sub.pop();
    }
}

fn optimize_alternating_simple_contains(r: Regexp) -> Regexp {
    if r.op != Op::Alternate {
        return r;
    }
    for sub in &r.sub {
        if sub.op != Op::Concat
            || sub.sub.len() != 3
            || !is_cs_literal(&sub.sub[1])
            || !is_match_any(&sub.sub[0])
            || !is_match_any(&sub.sub[2])
        {
            return r;
        }
    }
    if r.sub.len() > 1 {
        let any = || {
            let mut dot = Regexp::new(Op::AnyChar);
            dot.flags = goregex::PERL | goregex::DOT_NL;
            let mut star = Regexp::new(Op::Star);
            star.flags = goregex::PERL | goregex::DOT_NL;
            star.sub = vec![dot];
            star
        };
        let mut alts = Regexp::new(Op::Alternate);
        alts.sub = r
            .sub
            .into_iter()
            .map(|mut c| c.sub.swap_remove(1))
            .collect();
        let mut out = Regexp::new(Op::Concat);
        out.sub = vec![any(), alts, any()];
        return out;
    }
    r
}

fn optimize_concat_regex(r: &mut Regexp) -> (bool, Vec<u8>, Vec<u8>, Vec<Vec<u8>>) {
    for s in r.sub.iter_mut() {
        clear_capture(s);
    }
    let mut sub: &[Regexp] = &r.sub;
    if sub.first().is_some_and(|s| s.op == Op::BeginText) {
        sub = &sub[1..];
    }
    if sub.last().is_some_and(|s| s.op == Op::EndText) {
        sub = &sub[..sub.len() - 1];
    }
    let (mut ci, mut prefix, mut suffix, mut contains) =
        (false, Vec::new(), Vec::new(), Vec::new());
    if sub.is_empty() {
        return (ci, prefix, suffix, contains);
    }
    if sub[0].op == Op::Literal {
        prefix = runes_to_bytes(&sub[0].runes);
        ci = sub[0].flags & FOLD_CASE != 0;
    }
    let last = sub.len() - 1;
    if sub[last].op == Op::Literal && is_cs(&sub[last]) {
        suffix = runes_to_bytes(&sub[last].runes);
    }
    for s in sub.iter().take(last).skip(1) {
        if is_cs_literal(s) {
            contains.push(runes_to_bytes(&s.runes));
        }
    }
    (ci, prefix, suffix, contains)
}

type Set = Option<(Vec<Vec<u8>>, bool)>;

fn too_many(a: usize, b: usize) -> bool {
    a + b > MAX_SET_MATCHES
}

fn find_set_matches(re: &mut Regexp) -> Set {
    clear_begin_end_text(re);
    find_set_matches_internal(re, &[])
}

fn join(base: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(base.len() + tail.len());
    v.extend_from_slice(base);
    v.extend_from_slice(tail);
    v
}

fn find_set_matches_internal(re: &mut Regexp, base: &[u8]) -> Set {
    match re.op {
        Op::Literal => Some((vec![join(base, &runes_to_bytes(&re.runes))], is_cs(re))),
        Op::EmptyMatch if !base.is_empty() => Some((vec![base.to_vec()], is_cs(re))),
        Op::Alternate => {
            let mut matches = Vec::new();
            let mut mcs = false;
            if re.sub.is_empty() {
                return None;
            }
            let cs_flag = is_cs(re);
            let _ = cs_flag;
            for (i, sub) in re.sub.iter_mut().enumerate() {
                let (found, cs) = find_set_matches_internal(sub, base)?;
                if too_many(matches.len(), found.len()) {
                    return None;
                }
                if i == 0 {
                    mcs = cs;
                }
                if mcs != cs {
                    return None;
                }
                matches.extend(found);
            }
            Some((matches, mcs))
        }
        Op::Capture => {
            clear_capture(re);
            find_set_matches_internal(re, base)
        }
        Op::Concat => {
            if re.sub.is_empty() {
                return None;
            }
            for s in re.sub.iter_mut() {
                clear_capture(s);
            }
            let mut matches = vec![base.to_vec()];
            let mut mcs = false;
            for i in 0..re.sub.len() {
                let mut new = Vec::new();
                for (j, b) in matches.iter().enumerate() {
                    let (m, cs) = find_set_matches_internal(&mut re.sub[i], b)?;
                    if too_many(new.len(), m.len()) {
                        return None;
                    }
                    if i == 0 && j == 0 {
                        mcs = cs;
                    }
                    if mcs != cs {
                        return None;
                    }
                    new.extend(m);
                }
                matches = new;
            }
            Some((matches, mcs))
        }
        Op::CharClass => {
            if re.has_tables() {
                // A Unicode table: far more than maxSetMatches runes in practice.
                return None;
            }
            let total: u64 = re.runes.chunks(2).map(|p| (p[1] - p[0]) as u64 + 1).sum();
            if total > MAX_SET_MATCHES as u64 {
                return None;
            }
            let mut matches = Vec::new();
            for p in re.runes.chunks(2) {
                for c in p[0]..=p[1] {
                    matches.push(join(base, &runes_to_bytes(&[c])));
                }
            }
            if matches.is_empty() {
                return None;
            }
            Some((matches, is_cs(re)))
        }
        _ => None,
    }
}

fn is_simple_concatenation_pattern(re: &Regexp) -> bool {
    if re.op != Op::Concat || re.sub.len() < 2 {
        return false;
    }
    if !is_match_any(&re.sub[0]) || !is_match_any(&re.sub[re.sub.len() - 1]) {
        return false;
    }
    re.sub[1..re.sub.len() - 1]
        .iter()
        .all(|s| is_match_any(s) || is_cs_literal(s))
}

fn string_matcher_from_regexp(re: &mut Regexp) -> Option<Sm> {
    clear_begin_end_text(re);
    let m = string_matcher_internal(re)?;
    Some(optimize_equal_or_prefix(
        m,
        MIN_EQUAL_MULTI_STRING_MATCHER_MAP_THRESHOLD,
    ))
}

fn any_matcher(re: &Regexp) -> Option<Sm> {
    let sub = &re.sub[0];
    if sub.op != Op::AnyChar && sub.op != Op::AnyCharNotNL {
        return None;
    }
    let nl = sub.op == Op::AnyChar;
    Some(match re.op {
        Op::Plus => Sm::AnyNonEmpty { nl },
        Op::Star => {
            if nl {
                Sm::True
            } else {
                Sm::AnyWithoutNl
            }
        }
        _ => Sm::ZeroOrOne { nl },
    })
}

fn string_matcher_internal(re: &mut Regexp) -> Option<Sm> {
    clear_capture(re);
    match re.op {
        Op::Plus | Op::Star => any_matcher(re),
        Op::Quest => {
            if re.sub.len() != 1 {
                return None;
            }
            any_matcher(re)
        }
        Op::EmptyMatch => Some(Sm::Empty),
        Op::Literal => Some(Sm::Equal {
            s: runes_to_bytes(&re.runes),
            cs: is_cs(re),
        }),
        Op::Alternate => {
            let mut or = Vec::with_capacity(re.sub.len());
            for sub in re.sub.iter_mut() {
                or.push(string_matcher_internal(sub)?);
            }
            Some(Sm::Or(or))
        }
        Op::Concat => {
            for s in re.sub.iter_mut() {
                clear_capture(s);
            }
            if re.sub.is_empty() {
                return Some(Sm::Empty);
            }
            if re.sub.len() == 1 {
                return string_matcher_internal(&mut re.sub[0]);
            }
            let is_rep = |r: &Regexp| matches!(r.op, Op::Plus | Op::Star | Op::Quest);
            let mut left = None;
            let mut right = None;
            if is_rep(&re.sub[0]) {
                left = Some(string_matcher_internal(&mut re.sub[0])?);
                re.sub.remove(0);
            }
            if re.sub.last().is_some_and(is_rep) {
                let n = re.sub.len() - 1;
                right = Some(string_matcher_internal(&mut re.sub[n])?);
                re.sub.pop();
            }
            let mut found = find_set_matches_internal(re, &[]);
            if found.as_ref().is_none_or(|(m, _)| m.is_empty()) && re.sub.len() == 2 {
                if right.is_none() && re.sub[0].op == Op::Literal {
                    right = string_matcher_internal(&mut re.sub[1]);
                    if right.is_some() {
                        found = Some((vec![runes_to_bytes(&re.sub[0].runes)], is_cs(&re.sub[0])));
                    }
                } else if left.is_none() && re.sub[1].op == Op::Literal {
                    left = string_matcher_internal(&mut re.sub[0]);
                    if left.is_some() {
                        found = Some((vec![runes_to_bytes(&re.sub[1].runes)], is_cs(&re.sub[1])));
                    }
                }
            }
            let (matches, cs) = found?;
            if matches.is_empty() {
                return None;
            }
            match (left, right) {
                (None, None) => Some(Sm::Or(
                    matches.into_iter().map(|s| Sm::Equal { s, cs }).collect(),
                )),
                (None, Some(r)) if matches.len() == 1 => {
                    let prefix = matches.into_iter().next().expect("one");
                    Some(if cs {
                        Sm::PrefixCs {
                            prefix,
                            right: Box::new(r),
                        }
                    } else {
                        Sm::PrefixCi {
                            prefix,
                            right: Box::new(r),
                        }
                    })
                }
                (Some(l), None) if matches.len() == 1 => Some(Sm::Suffix {
                    left: Box::new(l),
                    suffix: matches.into_iter().next().expect("one"),
                    cs,
                }),
                (l, r) if cs => Some(Sm::Contains {
                    subs: matches,
                    left: l.map(Box::new),
                    right: r.map(Box::new),
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// findEqualOrPrefixStringMatchers.
fn visit_equal_or_prefix(
    input: &Sm,
    eq: &mut dyn FnMut(&[u8], bool) -> bool,
    pre: &mut dyn FnMut(&[u8], bool, &Sm) -> bool,
) -> bool {
    let Sm::Or(items) = input else {
        return false;
    };
    for m in items {
        let ok = match m {
            Sm::Or(_) => visit_equal_or_prefix(m, eq, pre),
            Sm::Equal { s, cs } => eq(s, *cs),
            Sm::PrefixCs { prefix, .. } => pre(prefix, true, m),
            Sm::PrefixCi { prefix, .. } => pre(prefix, false, m),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

fn optimize_equal_or_prefix(input: Sm, threshold: usize) -> Sm {
    let mut cs = false;
    let mut cs_set = false;
    let mut num_values = 0usize;
    let mut num_prefixes = 0usize;
    let mut min_prefix_len = 0usize;
    let ok = {
        let cell = std::cell::RefCell::new((&mut cs, &mut cs_set));
        let mut eq = |_: &[u8], mcs: bool| {
            let mut g = cell.borrow_mut();
            if *g.1 && *g.0 != mcs {
                return false;
            } else if !*g.1 {
                *g.0 = mcs;
                *g.1 = true;
            }
            num_values += 1;
            true
        };
        let mut pre = |p: &[u8], pcs: bool, _: &Sm| {
            let mut g = cell.borrow_mut();
            if *g.1 && *g.0 != pcs {
                return false;
            } else if !*g.1 {
                *g.0 = pcs;
                *g.1 = true;
            }
            if num_prefixes == 0 || p.len() < min_prefix_len {
                min_prefix_len = p.len();
            }
            num_prefixes += 1;
            true
        };
        visit_equal_or_prefix(&input, &mut eq, &mut pre)
    };
    if !ok || num_values + num_prefixes < threshold {
        return input;
    }
    let mut multi = MultiBuilder::new(cs, num_values, num_prefixes, min_prefix_len);
    let mut values: Vec<Vec<u8>> = Vec::new();
    let mut prefixes: Vec<(Vec<u8>, Sm)> = Vec::new();
    visit_equal_or_prefix(
        &input,
        &mut |s, _| {
            values.push(s.to_vec());
            true
        },
        &mut |p, _, m| {
            prefixes.push((p.to_vec(), m.clone()));
            true
        },
    );
    for v in &values {
        multi.add(v);
    }
    for (p, m) in prefixes {
        multi.add_prefix(&p, m);
    }
    multi.sm
}

enum Mode {
    /// Only the string matcher.
    Sm(Sm),
    /// Case-insensitive literal prefix, then the regex.
    CiPrefix,
    /// The general closure of compileMatchStringFunction.
    General,
}

/// A compiled `=~` / `!~` label matcher value, as Prometheus' FastRegexMatcher.
pub struct FastRegexMatcher {
    re: Option<regex::Regex>,
    set_matches: HashSet<Vec<u8>>,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    contains: Vec<Vec<u8>>,
    string_matcher: Option<Sm>,
    mode: Mode,
}

impl std::fmt::Debug for FastRegexMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastRegexMatcher")
            .field("re", &self.re.as_ref().map(|r| r.as_str()))
            .finish_non_exhaustive()
    }
}

impl FastRegexMatcher {
    /// NewFastRegexMatcher; the error is Go's regexp parse error.
    pub fn new(v: &[u8]) -> Result<FastRegexMatcher, String> {
        if let Some(sm) = optimize_alternating_literals(v) {
            return Ok(FastRegexMatcher {
                re: None,
                set_matches: HashSet::new(),
                prefix: Vec::new(),
                suffix: Vec::new(),
                contains: Vec::new(),
                string_matcher: None,
                mode: Mode::Sm(sm),
            });
        }
        let s = std::str::from_utf8(v).map_err(|_| goregex::invalid_utf8_error(v).to_string())?;
        let parsed =
            goregex::parse(s, goregex::PERL | goregex::DOT_NL).map_err(|e| e.to_string())?;
        let mut parsed = optimize_alternating_simple_contains(parsed);
        let mut pat = String::with_capacity(s.len() * 2 + 8);
        pat.push_str("\\A(?:");
        goregex::to_rust(&parsed, &mut pat);
        pat.push_str(")\\z");
        let re = goregex::compile_rust(&pat)?;

        clear_capture(&mut parsed);
        let (mut ci, mut prefix, mut suffix, mut contains) =
            (false, Vec::new(), Vec::new(), Vec::new());
        if parsed.op == Op::Concat {
            (ci, prefix, suffix, contains) = optimize_concat_regex(&mut parsed);
        }
        let mut set_matches = HashSet::new();
        if let Some((matches, true)) = find_set_matches(&mut parsed) {
            set_matches = matches.into_iter().collect();
        }
        let string_matcher = if is_simple_concatenation_pattern(&parsed) {
            Some(Sm::True)
        } else {
            string_matcher_from_regexp(&mut parsed)
        };
        let mut m = FastRegexMatcher {
            re: Some(re),
            set_matches,
            prefix,
            suffix,
            contains,
            string_matcher,
            mode: Mode::General,
        };
        if m.set_matches.is_empty()
            && m.prefix.is_empty()
            && m.suffix.is_empty()
            && m.contains.is_empty()
            && m.string_matcher.is_some()
        {
            m.mode = Mode::Sm(m.string_matcher.take().expect("checked"));
        } else if ci && !m.prefix.is_empty() {
            m.mode = Mode::CiPrefix;
        }
        Ok(m)
    }

    /// MatchString.
    pub fn matches(&self, s: &str) -> bool {
        let b = s.as_bytes();
        match &self.mode {
            Mode::Sm(sm) => sm.matches(b),
            Mode::CiPrefix => {
                has_prefix_ci(b, &self.prefix) && self.re.as_ref().is_some_and(|r| r.is_match(s))
            }
            Mode::General => {
                if !self.set_matches.is_empty() {
                    return self.set_matches.contains(b);
                }
                if !self.prefix.is_empty() && !b.starts_with(&self.prefix) {
                    return false;
                }
                if !self.suffix.is_empty() && !b.ends_with(&self.suffix) {
                    return false;
                }
                if !self.contains.is_empty() && !contains_in_order(b, &self.contains) {
                    return false;
                }
                if let Some(sm) = &self.string_matcher {
                    return sm.matches(b);
                }
                self.re.as_ref().is_some_and(|r| r.is_match(s))
            }
        }
    }
}

fn contains_in_order(s: &[u8], contains: &[Vec<u8>]) -> bool {
    let mut offset = 0;
    for sub in contains {
        match find(&s[offset..], sub) {
            None => return false,
            Some(at) => offset += at + sub.len(),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        FastRegexMatcher::new(p.as_bytes()).unwrap().matches(s)
    }

    #[test]
    fn basics() {
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("foo|bar", "bar"));
        assert!(!m("foo|bar", "foobar"));
        assert!(m("foo.*", "foobar"));
        assert!(!m("foo.*", "xfoobar"));
        assert!(m(".*", "a\nb"));
        assert!(m("(?i)foo", "FoO"));
        assert!(m("a.c", "a\nc"));
        assert!(m(".*-.*-.*", "a-b-c"));
        assert!(!m(".*-.*-.*", "a-b"));
        assert!(m("[a-c]x", "bx"));
        assert!(m("(?i)s.*", "sx"));
        // Prometheus compares the case-insensitive prefix on byte lengths.
        assert!(!m("(?i)s.*", "ſx"));
        assert!(m("(?i).*s", "xs"));
        assert!(!m("(?i).*s", "xſ"));
        assert!(m("a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p|q", "q"));
        assert!(m(
            "(?i)(aa|bb|cc|dd|ee|ff|gg|hh|ii|jj|kk|ll|mm|nn|oo|pp|qq)",
            "QQ"
        ));
    }
}
