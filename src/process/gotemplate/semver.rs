//! sprig's `semver` and `semverCompare`: a port of
//! `github.com/Masterminds/semver/v3` v3.4.0 (the version Grafana's Loki
//! 3.7.6 vendors under sprig v3.3.0): `NewVersion` (which coerces `1.2` to
//! `1.2.0` and takes a leading `v`), `Version`'s methods, `NewConstraint`
//! and `Constraints.Check`, with their error messages. The `Version` type,
//! its parsing and ordering are `version`'s (a template value can hold one,
//! so they sit below the value model); the constraints, sprig's functions
//! and the methods' table are here.
//!
//! Hand-written rather than built on the `semver` crate, whose rules are
//! Cargo's, not Masterminds': it refuses `v1.2`, `1.2` and leading zeros
//! as versions; reads a bare `1.2.3` as `^1.2.3` (Masterminds: exactly
//! 1.2.3); has no `||`, hyphen ranges, `!=`, `=>`, `=<` or `~>`; lets a
//! prerelease match only a comparator with a prerelease on the same
//! major.minor.patch (Masterminds: any constraint of an AND group one of
//! whose constraints names a prerelease); and orders numeric prerelease
//! identifiers past 2^64 as numbers (Masterminds: as text).
//!
//! Masterminds' parsing is its regular expressions, so this port uses the
//! very same patterns, parsed by the plugin's port of Go's `regexp/syntax`
//! and matched by the `regex` crate (leftmost-first, as Go's `regexp`): the
//! odd corners come out as Go's (`|` allowed inside a constraint's
//! version, the empty operator, `a - b` ranges rewritten by
//! `strings.Replace` of the first occurrence of the matched text, which
//! may lie elsewhere, e.g. across an earlier rewrite).
//!
//! Bounded: the patterns match in linear time, each range rewrite is
//! charged to the template's work budget (Go rescans and rebuilds the
//! whole string for each, so thousands of ranges end in a budget error
//! here where Go takes tens of seconds), and substring search is linear
//! (KMP).
//!
//! A `*semver.Version` has every method but `MarshalJSON`, `MarshalText`
//! (their `[]byte` results), `UnmarshalJSON`, `UnmarshalText` and `Scan`
//! (they change the version in place): those fail with an error.

use std::rc::Rc;

use super::func::{Ctx, FnResult, FuncDef, PT, check_len, s};
use super::gostr;
use super::value::{IntT, UintT, Value};
use super::version::{
    Patterns, Version, compare_prerelease, new_version, patterns, submatch, type_name,
};

macro_rules! def {
    ($name:expr, [$($p:ident),*], $imp:expr) => {
        FuncDef { name: $name, params: &[$(PT::$p),*], variadic: None, imp: $imp, builtin: false }
    };
}

// ---------------- constraints ----------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

fn op_of(s: &[u8]) -> Option<Op> {
    Some(match s {
        b"" | b"=" => Op::TildeOrEqual,
        b"!=" => Op::NotEqual,
        b">" => Op::Greater,
        b"<" => Op::Less,
        b">=" | b"=>" => Op::GreaterEqual,
        b"<=" | b"=<" => Op::LessEqual,
        b"~" | b"~>" => Op::Tilde,
        b"^" => Op::Caret,
        _ => return None,
    })
}

#[derive(Debug)]
struct Constraint {
    con: Version,
    op: Op,
    minor_dirty: bool,
    dirty: bool,
    patch_dirty: bool,
}

/// Constraints: OR groups of AND groups, and whether each OR group names
/// a prerelease (then its checks take prereleases).
#[derive(Debug)]
pub(super) struct Constraints {
    groups: Vec<(Vec<Constraint>, bool)>,
}

fn is_x(x: &[u8]) -> bool {
    matches!(x, b"x" | b"*" | b"X")
}

fn trim_dot(s: &[u8]) -> &[u8] {
    s.strip_prefix(b".").unwrap_or(s)
}

fn improper(s: &[u8]) -> String {
    format!("improper constraint: {}", gostr::to_string_lossy(s))
}

/// parseConstraint (`c` is never empty here: it comes from
/// findConstraintRegex or passed validConstraintRegex).
fn parse_constraint(p: &Patterns, c: &[u8]) -> Result<Constraint, String> {
    let Some(m) = submatch(&p.constraint, c) else {
        return Err(improper(c));
    };
    let op = op_of(m[1]).ok_or_else(|| improper(c))?;
    let (mut minor_dirty, mut patch_dirty, mut dirty) = (false, false, false);
    let ver: Vec<u8> = if is_x(m[3]) || m[3].is_empty() {
        dirty = true;
        [&b"0.0.0"[..], m[6]].concat()
    } else if is_x(trim_dot(m[4])) || m[4].is_empty() {
        minor_dirty = true;
        dirty = true;
        [m[3], b".0.0", m[6]].concat()
    } else if is_x(trim_dot(m[5])) || m[5].is_empty() {
        dirty = true;
        patch_dirty = true;
        [m[3], m[4], b".0", m[6]].concat()
    } else {
        m[2].to_vec()
    };
    let con = new_version(&ver).map_err(|_| "constraint parser error".to_string())?;
    Ok(Constraint {
        con,
        op,
        minor_dirty,
        dirty,
        patch_dirty,
    })
}

/// Linear-time strings.Index (Knuth-Morris-Pratt).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    let mut fail = vec![0usize; needle.len()];
    let mut k = 0;
    for i in 1..needle.len() {
        while k > 0 && needle[i] != needle[k] {
            k = fail[k - 1];
        }
        if needle[i] == needle[k] {
            k += 1;
        }
        fail[i] = k;
    }
    let mut k = 0;
    for (i, &b) in hay.iter().enumerate() {
        while k > 0 && b != needle[k] {
            k = fail[k - 1];
        }
        if b == needle[k] {
            k += 1;
            if k == needle.len() {
                return Some(i + 1 - k);
            }
        }
    }
    None
}

/// rewriteRange: each `a - b` found becomes `>= a, <= b `, by replacing
/// the first occurrence of the matched text (which may lie elsewhere than
/// the match, as with Go's strings.Replace).
fn rewrite_range(c: &mut Ctx<'_>, p: &Patterns, i: &[u8]) -> Result<Vec<u8>, String> {
    let mut o = i.to_vec();
    for caps in p.range.captures_iter(i) {
        c.charge_bytes(o.len())?;
        let (Some(whole), Some(a), Some(b)) = (caps.get(0), caps.get(1), caps.get(11)) else {
            continue;
        };
        let t = [&b">= "[..], a.as_bytes(), b", <= ", b.as_bytes(), b" "].concat();
        if let Some(at) = find(&o, whole.as_bytes()) {
            check_len(o.len() - whole.len() + t.len())?;
            o.splice(at..at + whole.len(), t);
        }
    }
    Ok(o)
}

/// semver.NewConstraint.
pub(super) fn new_constraint(c: &mut Ctx<'_>, s: &[u8]) -> Result<Constraints, String> {
    let p = patterns()?;
    c.charge_bytes(s.len().saturating_mul(4))?;
    let rewritten = rewrite_range(c, p, s)?;
    let mut groups = Vec::new();
    for part in split_or(&rewritten) {
        c.charge_bytes(part.len().saturating_mul(4))?;
        if !p.valid.is_match(part) {
            return Err(improper(part));
        }
        let mut found: Vec<&[u8]> = p.find.find_iter(part).map(|m| m.as_bytes()).collect();
        if found.is_empty() {
            found.push(part);
        }
        let mut and = Vec::with_capacity(found.len());
        let mut has_pre = false;
        for f in found {
            let pc = parse_constraint(p, f)?;
            has_pre |= !pc.con.pre.is_empty();
            and.push(pc);
        }
        groups.push((and, has_pre));
    }
    Ok(Constraints { groups })
}

/// strings.Split(s, "||").
fn split_or(s: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(at) = rest.windows(2).position(|w| w == b"||") {
        out.push(&rest[..at]);
        rest = &rest[at + 2..];
    }
    out.push(rest);
    out
}

impl Constraints {
    /// Check: some OR group whose every constraint the version meets.
    pub(super) fn check(&self, v: &Version) -> bool {
        self.groups
            .iter()
            .any(|(and, pre)| and.iter().all(|c| c.check(v, *pre)))
    }
}

impl Constraint {
    fn check(&self, v: &Version, include_pre: bool) -> bool {
        // Every operator first refuses a prerelease the group does not take.
        if !v.pre.is_empty() && !include_pre {
            return false;
        }
        match self.op {
            Op::TildeOrEqual => {
                if self.dirty {
                    self.tilde(v)
                } else {
                    v.equal(&self.con)
                }
            }
            Op::NotEqual => self.not_equal(v),
            Op::Greater => self.greater(v),
            Op::Less => v.compare(&self.con) < 0,
            Op::GreaterEqual => v.compare(&self.con) >= 0,
            Op::LessEqual => self.less_equal(v),
            Op::Tilde => self.tilde(v),
            Op::Caret => self.caret(v),
        }
    }

    fn not_equal(&self, v: &Version) -> bool {
        let c = &self.con;
        if self.dirty {
            if c.major != v.major {
                return true;
            }
            if c.minor != v.minor && !self.minor_dirty {
                return true;
            } else if self.minor_dirty {
                return false;
            } else if c.patch != v.patch && !self.patch_dirty {
                return true;
            } else if self.patch_dirty {
                if !v.pre.is_empty() || !c.pre.is_empty() {
                    return compare_prerelease(&v.pre, &c.pre) != 0;
                }
                return false;
            }
        }
        !v.equal(c)
    }

    fn greater(&self, v: &Version) -> bool {
        let c = &self.con;
        if !self.dirty {
            return v.compare(c) == 1;
        }
        if v.major > c.major {
            true
        } else if v.major < c.major || self.minor_dirty {
            false
        } else if self.patch_dirty {
            v.minor > c.minor
        } else {
            v.compare(c) == 1
        }
    }

    fn less_equal(&self, v: &Version) -> bool {
        let c = &self.con;
        if !self.dirty {
            return v.compare(c) <= 0;
        }
        !(v.major > c.major || (v.major == c.major && v.minor > c.minor && !self.minor_dirty))
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.con;
        if v.less_than(c) {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        v.minor == c.minor || self.minor_dirty
    }

    fn caret(&self, v: &Version) -> bool {
        let c = &self.con;
        if v.less_than(c) {
            return false;
        }
        if c.major > 0 || self.minor_dirty {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.patch_dirty {
            return v.minor == c.minor;
        }
        if v.minor > 0 {
            return false;
        }
        c.patch == v.patch
    }
}

// ---------------- sprig's functions ----------------

fn version_value(v: Version, pointer: bool) -> Value {
    Value::Semver(Rc::new(v), pointer)
}

pub(super) static FUNCS: &[FuncDef] = &[
    def!("semver", [Str], |_, a| new_version(s(&a[0]))
        .map(|v| version_value(v, true))),
    def!("semverCompare", [Str, Str], |c, a| {
        let cs = new_constraint(c, s(&a[0]))?;
        let v = new_version(s(&a[1]))?;
        Ok(Value::Bool(cs.check(&v)))
    }),
];

// ---------------- Version's methods ----------------

fn recv(a: &[Value]) -> Result<&Version, String> {
    match a.first() {
        Some(Value::Semver(v, _)) => Ok(v),
        _ => Err("invalid receiver".into()),
    }
}

/// The *Version argument of a comparison: nil dereferenced is Go's panic.
fn other(a: &[Value]) -> Result<&Version, String> {
    match a.get(1) {
        Some(Value::Semver(v, true)) => Ok(v),
        _ => Err("runtime error: invalid memory address or nil pointer dereference".into()),
    }
}

fn str_of(b: Vec<u8>) -> FnResult {
    Ok(Value::string(b))
}

fn unsupported(_: &mut Ctx<'_>, _: Vec<Value>) -> FnResult {
    Err("this method is not supported by this implementation".into())
}

/// Methods of the value receiver (a `semver.Version` has only these).
static VALUE_METHODS: &[FuncDef] = &[
    def!("String", [], |_, a| str_of(recv(&a)?.string())),
    def!("Major", [], |_, a| Ok(Value::Uint(
        recv(&a)?.major,
        UintT::Uint64
    ))),
    def!("Minor", [], |_, a| Ok(Value::Uint(
        recv(&a)?.minor,
        UintT::Uint64
    ))),
    def!("Patch", [], |_, a| Ok(Value::Uint(
        recv(&a)?.patch,
        UintT::Uint64
    ))),
    def!("Prerelease", [], |_, a| str_of(recv(&a)?.pre.clone())),
    def!("Metadata", [], |_, a| str_of(recv(&a)?.metadata.clone())),
    def!("IncPatch", [], |_, a| Ok(version_value(
        recv(&a)?.inc_patch(),
        false
    ))),
    def!("IncMinor", [], |_, a| Ok(version_value(
        recv(&a)?.inc_minor(),
        false
    ))),
    def!("IncMajor", [], |_, a| Ok(version_value(
        recv(&a)?.inc_major(),
        false
    ))),
    def!("SetPrerelease", [Str], |_, a| recv(&a)?
        .set_prerelease(s(&a[1]))
        .map(|v| version_value(v, false))),
    def!("SetMetadata", [Str], |_, a| recv(&a)?
        .set_metadata(s(&a[1]))
        .map(|v| version_value(v, false))),
    // driver.Valuer: the String() in an interface{}.
    def!("Value", [], |_, a| str_of(recv(&a)?.string())),
    // These return []byte, which this engine does not model.
    def!("MarshalJSON", [], unsupported),
    def!("MarshalText", [], unsupported),
];

/// Methods of the pointer receiver (a `*semver.Version` has these too).
static POINTER_METHODS: &[FuncDef] = &[
    def!("Original", [], |_, a| str_of(recv(&a)?.original.clone())),
    def!("LessThan", [Version], |_, a| Ok(Value::Bool(
        recv(&a)?.compare(other(&a)?) < 0
    ))),
    def!("LessThanEqual", [Version], |_, a| Ok(Value::Bool(
        recv(&a)?.compare(other(&a)?) <= 0
    ))),
    def!("GreaterThan", [Version], |_, a| Ok(Value::Bool(
        recv(&a)?.compare(other(&a)?) > 0
    ))),
    def!("GreaterThanEqual", [Version], |_, a| Ok(Value::Bool(
        recv(&a)?.compare(other(&a)?) >= 0
    ))),
    def!("Equal", [Version], |_, a| {
        let v = recv(&a)?;
        Ok(Value::Bool(match a.get(1) {
            Some(Value::Semver(o, true)) => v.equal(o),
            _ => false,
        }))
    }),
    def!("Compare", [Version], |_, a| Ok(Value::Int(
        recv(&a)?.compare(other(&a)?),
        IntT::Int
    ))),
    // These change the version in place (and Scan returns a bare error),
    // which this engine's values do not model.
    def!("UnmarshalJSON", [Any], unsupported),
    def!("UnmarshalText", [Any], unsupported),
    def!("Scan", [Any], unsupported),
];

/// The method `name` of a version value (`pointer`: a *semver.Version,
/// else a semver.Version that is not addressable, as a call's result).
pub(super) fn method(pointer: bool, name: &str) -> Option<&'static FuncDef> {
    VALUE_METHODS.iter().find(|f| f.name == name).or_else(|| {
        if pointer {
            POINTER_METHODS.iter().find(|f| f.name == name)
        } else {
            None
        }
    })
}

/// Go's error for `.name` on a version that has no such method.
pub(super) fn field_error(pointer: bool, name: &str) -> String {
    let t = type_name(pointer);
    if matches!(
        name,
        "major" | "minor" | "patch" | "pre" | "metadata" | "original"
    ) {
        format!("{name} is an unexported field of struct type {t}")
    } else {
        format!("can't evaluate field {name} in type {t}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmp_finds_the_first_occurrence() {
        assert_eq!(find(b"abcabd", b"abd"), Some(3));
        assert_eq!(find(b"aaaa", b"aab"), None);
        assert_eq!(find(b"xaab", b"aab"), Some(1));
        let hay = [
            b"1".repeat(5000),
            b"y".to_vec(),
            b"1".repeat(5000),
            b" - 2".to_vec(),
        ]
        .concat();
        let needle = [b"1".repeat(5000), b" - 2".to_vec()].concat();
        assert_eq!(find(&hay, &needle), Some(5001));
    }

    #[test]
    fn split_or_as_strings_split() {
        assert_eq!(split_or(b"a||b|||c"), vec![&b"a"[..], b"b", b"|c"]);
        assert_eq!(split_or(b""), vec![&b""[..]]);
    }
}
