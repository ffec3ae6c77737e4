//! Masterminds/semver v3.4.0's `Version` (the version Grafana's Loki
//! 3.7.6 vendors under sprig v3.3.0): `NewVersion` (which coerces `1.2` to
//! `1.2.0` and takes a leading `v`), the ordering, the arithmetic of the
//! `Inc*`/`Set*` methods, and Masterminds' own patterns, which the
//! constraints of `semver` parse with too.
//!
//! A template value can hold a version (`Value::Semver`), so the type sits
//! below the value model; sprig's `semver`/`semverCompare`, constraints and
//! the methods' table are `semver`'s (whose doc says why this is a port
//! rather than the `semver` crate).

use std::sync::OnceLock;

use regex::bytes::{Regex, RegexBuilder};

use super::super::goregex::syntax;
use super::limits::MAX_REGEX_SIZE;
use super::strconv;

// ---------------- the patterns (Masterminds' own) ----------------

const LOOSE_SEMVER: &str = r"v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";

const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";

const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";

pub(super) struct Patterns {
    /// `^` looseSemVerRegex `$` (NewVersion with CoerceNewVersion).
    pub loose_version: Regex,
    /// constraintRegex: one operator and version, anchored.
    pub constraint: Regex,
    /// constraintRangeRegex: `a - b`, unanchored.
    pub range: Regex,
    /// findConstraintRegex: each operator and version, unanchored.
    pub find: Regex,
    /// validConstraintRegex: an AND group, anchored.
    pub valid: Regex,
}

/// Compiles a Go pattern with Go's meaning; its groups must keep Go's
/// numbering (true of these patterns: no named or nested renumbering).
fn go_regex(pattern: &str) -> Result<Regex, String> {
    let tree = syntax::parse(pattern, syntax::PERL).map_err(|e| e.to_string())?;
    let mut rust = String::with_capacity(pattern.len() * 2);
    let mut caps = Vec::new();
    syntax::to_rust_captures(&tree, &mut rust, &mut caps);
    if caps.iter().enumerate().any(|(i, (go, _))| *go != i + 1)
        || caps.len() != syntax::num_captures(&tree)
    {
        return Err(format!("semver: pattern groups renumbered: {pattern}"));
    }
    RegexBuilder::new(&rust)
        .size_limit(MAX_REGEX_SIZE * 8)
        .dfa_size_limit(MAX_REGEX_SIZE)
        .build()
        .map_err(|e| format!("semver: {e}"))
}

fn compile_patterns() -> Result<Patterns, String> {
    Ok(Patterns {
        loose_version: go_regex(&format!("^{LOOSE_SEMVER}$"))?,
        constraint: go_regex(&format!(r"^\s*({OPS})\s*({CV})\s*$"))?,
        range: go_regex(&format!(r"\s*({CV})\s+-\s+({CV})\s*"))?,
        find: go_regex(&format!(r"({OPS})\s*({CV})"))?,
        valid: go_regex(&format!(
            r"^(\s*({OPS})\s*({CV})\s*)((?:\s+|,\s*)({OPS})\s*({CV})\s*)*$"
        ))?,
    })
}

pub(super) fn patterns() -> Result<&'static Patterns, String> {
    static P: OnceLock<Result<Patterns, String>> = OnceLock::new();
    P.get_or_init(compile_patterns)
        .as_ref()
        .map_err(Clone::clone)
}

/// FindSubmatch: each group's text ("" when it took no part).
pub(super) fn submatch<'s>(re: &Regex, s: &'s [u8]) -> Option<Vec<&'s [u8]>> {
    let caps = re.captures(s)?;
    Some(
        (0..caps.len())
            .map(|i| caps.get(i).map_or(&b""[..], |m| m.as_bytes()))
            .collect(),
    )
}

// ---------------- versions ----------------

const ERR_INVALID_SEMVER: &str = "invalid semantic version";
const ERR_SEGMENT_STARTS_ZERO: &str = "version segment starts with 0";
const ERR_INVALID_METADATA: &str = "invalid metadata string";
const ERR_INVALID_PRERELEASE: &str = "invalid prerelease string";

/// semver.Version: all its strings are ASCII (checked by the patterns or
/// by validatePrerelease/validateMetadata).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: Vec<u8>,
    pub metadata: Vec<u8>,
    pub original: Vec<u8>,
}

fn is_allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

fn all_digits(p: &[u8]) -> bool {
    p.iter().all(u8::is_ascii_digit)
}

/// validatePrerelease.
fn validate_prerelease(p: &[u8]) -> Result<(), String> {
    for part in p.split(|b| *b == b'.') {
        if part.is_empty() {
            return Err(ERR_INVALID_PRERELEASE.into());
        } else if all_digits(part) {
            if part.len() > 1 && part[0] == b'0' {
                return Err(ERR_SEGMENT_STARTS_ZERO.into());
            }
        } else if !part.iter().all(|b| is_allowed(*b)) {
            return Err(ERR_INVALID_PRERELEASE.into());
        }
    }
    Ok(())
}

/// validateMetadata.
fn validate_metadata(m: &[u8]) -> Result<(), String> {
    for part in m.split(|b| *b == b'.') {
        if part.is_empty() || !part.iter().all(|b| is_allowed(*b)) {
            return Err(ERR_INVALID_METADATA.into());
        }
    }
    Ok(())
}

/// strconv.ParseUint(s, 10, 64) as the version segments use it.
fn parse_segment(digits: &[u8]) -> Result<u64, String> {
    strconv::parse_uint(digits, 10).map_err(|(_, e)| {
        let why = match e {
            strconv::NumErr::Range => "value out of range",
            strconv::NumErr::Syntax => "invalid syntax",
        };
        format!(
            "error parsing version segment: strconv.ParseUint: parsing {}: {why}",
            strconv::quote_str(digits)
        )
    })
}

/// semver.NewVersion (coerceNewVersion: `CoerceNewVersion` is true).
pub(super) fn new_version(v: &[u8]) -> Result<Version, String> {
    let p = patterns()?;
    let Some(m) = submatch(&p.loose_version, v) else {
        return Err(ERR_INVALID_SEMVER.into());
    };
    let mut sv = Version {
        metadata: m[8].to_vec(),
        pre: m[5].to_vec(),
        original: v.to_vec(),
        ..Version::default()
    };
    sv.major = parse_segment(m[1])?;
    if !m[2].is_empty() {
        sv.minor = parse_segment(&m[2][1..])?;
    }
    if !m[3].is_empty() {
        sv.patch = parse_segment(&m[3][1..])?;
    }
    if !sv.pre.is_empty() {
        validate_prerelease(&sv.pre)?;
    }
    if !sv.metadata.is_empty() {
        validate_metadata(&sv.metadata)?;
    }
    Ok(sv)
}

impl Version {
    /// String(): major.minor.patch[-pre][+metadata].
    pub(super) fn string(&self) -> Vec<u8> {
        let mut out = format!("{}.{}.{}", self.major, self.minor, self.patch).into_bytes();
        if !self.pre.is_empty() {
            out.push(b'-');
            out.extend_from_slice(&self.pre);
        }
        if !self.metadata.is_empty() {
            out.push(b'+');
            out.extend_from_slice(&self.metadata);
        }
        out
    }

    fn original_v_prefix(&self) -> &'static [u8] {
        if self.original.first() == Some(&b'v') {
            b"v"
        } else {
            b""
        }
    }

    fn with_original(mut self, prefix: &[u8]) -> Version {
        let mut o = prefix.to_vec();
        o.extend_from_slice(&self.string());
        self.original = o;
        self
    }

    pub(super) fn inc_patch(&self) -> Version {
        let mut next = self.clone();
        if self.pre.is_empty() {
            next.patch = self.patch.wrapping_add(1);
        }
        next.metadata.clear();
        next.pre.clear();
        next.with_original(self.original_v_prefix())
    }

    pub(super) fn inc_minor(&self) -> Version {
        let mut next = self.clone();
        next.metadata.clear();
        next.pre.clear();
        next.patch = 0;
        next.minor = self.minor.wrapping_add(1);
        next.with_original(self.original_v_prefix())
    }

    pub(super) fn inc_major(&self) -> Version {
        let mut next = self.clone();
        next.metadata.clear();
        next.pre.clear();
        next.patch = 0;
        next.minor = 0;
        next.major = self.major.wrapping_add(1);
        next.with_original(self.original_v_prefix())
    }

    pub(super) fn set_prerelease(&self, pre: &[u8]) -> Result<Version, String> {
        if !pre.is_empty() {
            validate_prerelease(pre)?;
        }
        let mut next = self.clone();
        next.pre = pre.to_vec();
        Ok(next.with_original(self.original_v_prefix()))
    }

    pub(super) fn set_metadata(&self, metadata: &[u8]) -> Result<Version, String> {
        if !metadata.is_empty() {
            validate_metadata(metadata)?;
        }
        let mut next = self.clone();
        next.metadata = metadata.to_vec();
        Ok(next.with_original(self.original_v_prefix()))
    }

    /// Compare: -1, 0 or 1; metadata is ignored, a prerelease is lower.
    pub(super) fn compare(&self, o: &Version) -> i64 {
        for (a, b) in [
            (self.major, o.major),
            (self.minor, o.minor),
            (self.patch, o.patch),
        ] {
            if a != b {
                return if a < b { -1 } else { 1 };
            }
        }
        match (self.pre.is_empty(), o.pre.is_empty()) {
            (true, true) => 0,
            (true, false) => 1,
            (false, true) => -1,
            (false, false) => compare_prerelease(&self.pre, &o.pre),
        }
    }

    pub(super) fn less_than(&self, o: &Version) -> bool {
        self.compare(o) < 0
    }

    pub(super) fn equal(&self, o: &Version) -> bool {
        self.compare(o) == 0
    }
}

pub(super) fn compare_prerelease(v: &[u8], o: &[u8]) -> i64 {
    let sparts: Vec<&[u8]> = v.split(|b| *b == b'.').collect();
    let oparts: Vec<&[u8]> = o.split(|b| *b == b'.').collect();
    for i in 0..sparts.len().max(oparts.len()) {
        let s = sparts.get(i).copied().unwrap_or(b"");
        let o = oparts.get(i).copied().unwrap_or(b"");
        let d = compare_pre_part(s, o);
        if d != 0 {
            return d;
        }
    }
    0
}

fn compare_pre_part(s: &[u8], o: &[u8]) -> i64 {
    if s == o {
        return 0;
    }
    if s.is_empty() {
        return -1;
    }
    if o.is_empty() {
        return 1;
    }
    let oi = strconv::parse_uint(o, 10);
    let si = strconv::parse_uint(s, 10);
    match (si, oi) {
        (Err(_), Err(_)) => {
            if s > o {
                1
            } else {
                -1
            }
        }
        (Ok(_), Err(_)) => -1,
        (Err(_), Ok(_)) => 1,
        (Ok(si), Ok(oi)) => {
            if si > oi {
                1
            } else {
                -1
            }
        }
    }
}

pub(super) fn type_name(pointer: bool) -> &'static str {
    if pointer {
        "*semver.Version"
    } else {
        "semver.Version"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Result<Version, String> {
        new_version(s.as_bytes())
    }

    #[test]
    fn patterns_compile_with_go_numbering() {
        let p = patterns().expect("patterns");
        assert_eq!(p.constraint.captures_len(), 12);
        assert_eq!(p.range.captures_len(), 21);
    }

    #[test]
    fn versions_as_new_version() {
        let x = v("v1.2-beta.1+b.5").unwrap();
        assert_eq!((x.major, x.minor, x.patch), (1, 2, 0));
        assert_eq!(x.string(), b"1.2.0-beta.1+b.5");
        assert_eq!(x.original, b"v1.2-beta.1+b.5");
        assert_eq!(v("01.002.0003").unwrap().string(), b"1.2.3");
        assert_eq!(v("1.2.3.4").unwrap_err(), "invalid semantic version");
        assert_eq!(v("").unwrap_err(), "invalid semantic version");
        assert_eq!(v("1.2.3-01").unwrap_err(), "version segment starts with 0");
        assert_eq!(
            v("18446744073709551616").unwrap_err(),
            "error parsing version segment: strconv.ParseUint: parsing \"18446744073709551616\": value out of range"
        );
        assert_eq!(v("18446744073709551615").unwrap().major, u64::MAX);
    }

    #[test]
    fn prerelease_order() {
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for w in order.windows(2) {
            assert_eq!(v(w[0]).unwrap().compare(&v(w[1]).unwrap()), -1, "{w:?}");
        }
    }
}
