//! Sprig v3.3.0's function map (the parts that run without the network or
//! key material), with Go's types and quirks.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::func::{Ctx, FnResult, FuncDef, PT, check_len, i, s, too_long};
use super::limits::{MAX_LIST, MAX_STRING, MAX_VALUE_DEPTH};
use super::value::{IntT, List, ListT, Map, MapT, UintT, Value};
use super::{encoding, goregex, gostr, json, printf, strconv, timefmt, unicode as uni};

macro_rules! def {
    ($name:expr, [$($p:ident),*], $imp:expr) => {
        FuncDef { name: $name, params: &[$(PT::$p),*], variadic: None, imp: $imp, builtin: false }
    };
    ($name:expr, [$($p:ident),*], *$v:ident, $imp:expr) => {
        FuncDef { name: $name, params: &[$(PT::$p),*], variadic: Some(PT::$v), imp: $imp, builtin: false }
    };
}

fn unsupported(_: &mut Ctx<'_>, _: Vec<Value>) -> FnResult {
    Err("this function is not supported by this implementation".into())
}

// ---------------- conversions (sprig strval, spf13/cast) ----------------

/// sprig's strval.
pub(super) fn strval(v: &Value) -> Result<Vec<u8>, String> {
    match v {
        Value::Str(s) => Ok(s.to_vec()),
        Value::Time(t) => Ok(timefmt::time_string(t).into_bytes()),
        Value::Semver(v, _) => Ok(v.string()),
        Value::Int(i, IntT::Month) => Ok(timefmt::month_name(*i).into_bytes()),
        Value::Int(i, IntT::Weekday) => Ok(timefmt::weekday_name(*i).into_bytes()),
        Value::Int(i, IntT::Duration) => Ok(timefmt::duration_string(*i).into_bytes()),
        v => printf::sprint_v(v).or_else(too_long),
    }
}

/// Go's float64 -> int64 conversion on amd64 (out of range: MinInt64).
pub(super) fn f2i(f: f64) -> i64 {
    if f.is_nan() || !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// cast's trimDecimal: "12.34" -> "12" when the string is a plain decimal.
fn trim_decimal(s: &[u8]) -> Vec<u8> {
    if !s.contains(&b'.') {
        return s.to_vec();
    }
    // ^([-+]?\d*)(\.\d*)?$
    let mut i = 0;
    if i < s.len() && (s[i] == b'-' || s[i] == b'+') {
        i += 1;
    }
    while i < s.len() && s[i].is_ascii_digit() {
        i += 1;
    }
    let int_part = &s[..i];
    let mut j = i;
    if j < s.len() && s[j] == b'.' {
        j += 1;
        while j < s.len() && s[j].is_ascii_digit() {
            j += 1;
        }
    }
    if j != s.len() {
        return s.to_vec();
    }
    match int_part {
        b"-" | b"+" => {
            let mut v = int_part.to_vec();
            v.push(b'0');
            v
        }
        b"" => b"0".to_vec(),
        p => p.to_vec(),
    }
}

/// cast.ToInt64E (v1.9; errors mean 0 to the callers here).
pub(super) fn to_int64_e(v: &Value) -> Result<i64, ()> {
    match v {
        Value::Int(i, _) => Ok(*i),
        Value::Uint(u, _) => Ok(*u as i64),
        Value::Float(f) => Ok(f2i(*f)),
        Value::Str(s) if s.is_empty() => Ok(0),
        Value::Str(s) => strconv::parse_int(&trim_decimal(s), 0).map_err(|_| ()),
        Value::Bool(b) => Ok(*b as i64),
        Value::Nil | Value::Invalid => Ok(0),
        _ => Err(()),
    }
}

pub(super) fn to_int64(v: &Value) -> i64 {
    to_int64_e(v).unwrap_or(0)
}

/// cast.ToFloat64E.
pub(super) fn to_float64_e(v: &Value) -> Result<f64, ()> {
    match v {
        Value::Int(i, _) => Ok(*i as f64),
        Value::Str(s) if s.is_empty() => Ok(0.0),
        Value::Uint(u, _) => Ok(*u as f64),
        Value::Float(f) => Ok(*f),
        Value::Str(s) => strconv::parse_float(s).map_err(|_| ()),
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::Nil | Value::Invalid => Ok(0.0),
        _ => Err(()),
    }
}

pub(super) fn to_float64(v: &Value) -> f64 {
    to_float64_e(v).unwrap_or(0.0)
}

/// sprig's empty().
pub(super) fn empty(v: &Value) -> bool {
    match v {
        Value::Invalid | Value::Nil => true,
        Value::Str(s) => s.is_empty(),
        Value::List(l) => l.items.is_empty(),
        Value::Map(m) => m.borrow().items.is_empty(),
        Value::Bool(b) => !b,
        Value::Int(i, _) => *i == 0,
        Value::Uint(u, _) => *u == 0,
        Value::Float(f) => *f == 0.0,
        Value::Complex(r, i) => *r == 0.0 && *i == 0.0,
        Value::Time(_) | Value::Semver(..) => false,
    }
}

fn is_nil_arg(v: &Value) -> bool {
    matches!(v, Value::Nil | Value::Invalid)
}

/// sprig's strslice.
fn strslice(v: &Value) -> Result<Vec<Vec<u8>>, String> {
    match v {
        Value::List(l) if l.t == ListT::Str => Ok(l.items.iter().map(|e| s(e).to_vec()).collect()),
        Value::List(l) => {
            let mut out = Vec::with_capacity(l.items.len());
            for e in &l.items {
                if !is_nil_arg(e) {
                    out.push(strval(e)?);
                }
            }
            Ok(out)
        }
        Value::Nil | Value::Invalid => Ok(Vec::new()),
        v => Ok(vec![strval(v)?]),
    }
}

fn nil_deref() -> String {
    "runtime error: invalid memory address or nil pointer dereference".into()
}

/// The element list of a slice argument (sprig's reflect-based helpers).
fn slice_items(v: &Value, what: &str) -> Result<Rc<List>, String> {
    match v {
        Value::List(l) => Ok(l.clone()),
        Value::Nil | Value::Invalid => Err(nil_deref()),
        v => Err(format!("Cannot {what} on type {}", v.kind_name())),
    }
}

fn iface_list(items: Vec<Value>) -> Value {
    Value::list(items, ListT::Iface)
}

fn check_list(n: usize) -> Result<(), String> {
    if n > MAX_LIST {
        return Err("result exceeds the list size limit".into());
    }
    Ok(())
}

// ---------------- deep equality / copy ----------------

pub(super) fn deep_equal(
    c: &mut Ctx<'_>,
    a: &Value,
    b: &Value,
    depth: usize,
) -> Result<bool, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err("value nesting too deep".into());
    }
    c.charge(1)?;
    Ok(match (a, b) {
        (Value::Nil | Value::Invalid, Value::Nil | Value::Invalid) => true,
        (Value::Nil | Value::Invalid, _) | (_, Value::Nil | Value::Invalid) => false,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x, t1), Value::Int(y, t2)) => t1 == t2 && x == y,
        (Value::Uint(x, t1), Value::Uint(y, t2)) => t1 == t2 && x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Complex(a1, b1), Value::Complex(a2, b2)) => a1 == a2 && b1 == b2,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Time(x), Value::Time(y)) => x.same(y),
        (Value::Semver(x, p), Value::Semver(y, q)) => p == q && (Rc::ptr_eq(x, y) || x == y),
        (Value::List(x), Value::List(y)) => {
            if x.t != y.t || x.nil != y.nil || x.items.len() != y.items.len() {
                return Ok(false);
            }
            if Rc::ptr_eq(x, y) {
                return Ok(true);
            }
            for (p, q) in x.items.iter().zip(y.items.iter()) {
                if !deep_equal(c, p, q, depth + 1)? {
                    return Ok(false);
                }
            }
            true
        }
        (Value::Map(x), Value::Map(y)) => {
            if Rc::ptr_eq(x, y) {
                return Ok(true);
            }
            let (x, y) = (x.borrow(), y.borrow());
            if x.t != y.t || x.nil != y.nil || x.items.len() != y.items.len() {
                return Ok(false);
            }
            for (k, v) in &x.items {
                match y.items.get(k) {
                    Some(w) => {
                        if !deep_equal(c, v, w, depth + 1)? {
                            return Ok(false);
                        }
                    }
                    None => return Ok(false),
                }
            }
            true
        }
        _ => false,
    })
}

fn deep_copy(c: &mut Ctx<'_>, v: &Value, depth: usize) -> Result<Value, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err("value nesting too deep".into());
    }
    c.charge(1)?;
    Ok(match v {
        Value::List(l) => {
            let mut items = Vec::with_capacity(l.items.len());
            for e in &l.items {
                items.push(deep_copy(c, e, depth + 1)?);
            }
            Value::List(Rc::new(List {
                items,
                t: l.t,
                nil: l.nil,
            }))
        }
        Value::Map(m) => {
            let m = m.borrow();
            let mut items = BTreeMap::new();
            for (k, e) in &m.items {
                items.insert(k.clone(), deep_copy(c, e, depth + 1)?);
            }
            Value::Map(Rc::new(RefCell::new(Map {
                items,
                t: m.t,
                nil: m.nil,
            })))
        }
        // copystructure copies exported fields only: a Version has none.
        Value::Semver(_, p) => Value::Semver(Rc::default(), *p),
        v => v.clone(),
    })
}

// ---------------- strings ----------------

fn abbreviate_full(s: &[u8], offset: i64, max_width: i64) -> Vec<u8> {
    if s.is_empty() {
        return Vec::new();
    }
    if max_width < 4 {
        return Vec::new();
    }
    let len = s.len() as i64;
    if len <= max_width {
        return s.to_vec();
    }
    let mut offset = offset.min(len);
    if len - offset < max_width - 3 {
        offset = len - (max_width - 3);
    }
    let marker = b"...";
    if offset <= 4 {
        let mut out = s[..(max_width - 3) as usize].to_vec();
        out.extend_from_slice(marker);
        return out;
    }
    if max_width < 7 {
        return Vec::new();
    }
    if offset + max_width - 3 < len {
        let mut out = marker.to_vec();
        out.extend_from_slice(&abbreviate_full(&s[offset as usize..], 0, max_width - 3));
        return out;
    }
    let mut out = marker.to_vec();
    out.extend_from_slice(&s[(len - (max_width - 3)) as usize..]);
    out
}

/// Latin-1 view of one byte as Go's rune(str[i]).
fn byte_rune(b: u8) -> char {
    char::from_u32(b as u32).unwrap_or('\u{FFFD}')
}

fn initials(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut last_gap = true;
    for &b in s {
        let ch = byte_rune(b);
        if uni::is_space(ch) {
            last_gap = true;
        } else if last_gap {
            gostr::push_rune(&mut out, ch);
            last_gap = false;
        }
    }
    out
}

fn nospace(s: &[u8]) -> Vec<u8> {
    if s.iter().all(|b| !uni::is_space(byte_rune(*b))) {
        return s.to_vec();
    }
    let mut out = Vec::new();
    for &b in s {
        let ch = byte_rune(b);
        if !uni::is_space(ch) {
            gostr::push_rune(&mut out, ch);
        }
    }
    out
}

fn uncapitalize(s: &[u8]) -> Vec<u8> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut next = true;
    gostr::map_runes(s, |ch| {
        if uni::is_space(ch) {
            next = true;
            ch
        } else if next {
            next = false;
            uni::to_lower(ch)
        } else {
            ch
        }
    })
}

fn swapcase(s: &[u8]) -> Vec<u8> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut whitespace = true;
    gostr::map_runes(s, |ch| {
        if uni::is_upper(ch) || uni::is_title(ch) {
            whitespace = false;
            uni::to_lower(ch)
        } else if uni::is_lower(ch) {
            if whitespace {
                whitespace = false;
                uni::to_title(ch)
            } else {
                uni::to_upper(ch)
            }
        } else {
            whitespace = uni::is_space(ch);
            ch
        }
    })
}

fn wrap_custom(s: &[u8], wrap_length: i64, new_line: &[u8], wrap_long: bool) -> Vec<u8> {
    if s.is_empty() {
        return Vec::new();
    }
    let nl: &[u8] = if new_line.is_empty() { b"\n" } else { new_line };
    let wl = wrap_length.max(1) as usize;
    let len = s.len();
    let mut offset = 0usize;
    let mut out = Vec::with_capacity(len + 16);
    while len - offset > wl {
        if s[offset] == b' ' {
            offset += 1;
            continue;
        }
        let end = wl + offset + 1;
        let last_space = s[offset..end].iter().rposition(|b| *b == b' ');
        if let Some(sp) = last_space {
            let at = offset + sp;
            out.extend_from_slice(&s[offset..at]);
            out.extend_from_slice(nl);
            offset = at + 1;
        } else if wrap_long {
            let end = wl + offset;
            out.extend_from_slice(&s[offset..end]);
            out.extend_from_slice(nl);
            offset += wl;
        } else {
            let end = wl + offset;
            match s[end..].iter().position(|b| *b == b' ') {
                None => {
                    out.extend_from_slice(&s[offset..]);
                    offset = len;
                }
                Some(idx) => {
                    let at = idx + end;
                    out.extend_from_slice(&s[offset..at]);
                    out.extend_from_slice(nl);
                    offset = at + 1;
                }
            }
        }
        if out.len() > MAX_STRING {
            break;
        }
    }
    out.extend_from_slice(&s[offset.min(len)..]);
    out
}

fn is_connector(r: char) -> bool {
    r == '-' || r == '_' || uni::is_space(r)
}

/// xstrings v1.5 ToPascalCase (sprig's camelcase).
fn pascal_case(s: &[u8]) -> Vec<u8> {
    if s.is_empty() {
        return Vec::new();
    }
    let runes: Vec<char> = gostr::runes(s).map(|(_, r, _)| r).collect();
    let mut out = Vec::with_capacity(s.len());
    let mut idx = 0;
    let mut r0 = '\0';
    let mut first_upper = false;
    let mut got = false;
    while idx < runes.len() {
        r0 = runes[idx];
        idx += 1;
        if !is_connector(r0) {
            first_upper = uni::is_upper(r0);
            r0 = uni::to_upper(r0);
            got = true;
            break;
        }
        gostr::push_rune(&mut out, r0);
    }
    if idx >= runes.len() {
        if got {
            gostr::push_rune(&mut out, r0);
        }
        return out;
    }
    while idx < runes.len() {
        let r1 = r0;
        r0 = runes[idx];
        idx += 1;
        if is_connector(r0) && is_connector(r1) {
            gostr::push_rune(&mut out, r1);
            continue;
        }
        if is_connector(r1) {
            first_upper = uni::is_upper(r0);
            r0 = uni::to_upper(r0);
        } else {
            if first_upper {
                if uni::is_upper(r0) {
                    r0 = uni::to_lower(r0);
                } else {
                    first_upper = false;
                }
            }
            gostr::push_rune(&mut out, r1);
        }
    }
    gostr::push_rune(&mut out, r0);
    out
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum WT {
    Invalid,
    Number,
    Upper,
    Alpha,
    Connector,
    Punct,
    Other,
}

/// xstrings isAlphabet: a letter but not a CJK character.
fn is_alphabet(r: char) -> bool {
    if !uni::is_letter(r) {
        return false;
    }
    let u = r as u32;
    if u < 0x3400 {
        return true;
    }
    !((0x4E00..=0x9FCC).contains(&u)
        || (0x3400..=0x4D85).contains(&u)
        || (0x20000..=0x2B81D).contains(&u))
}

fn next_valid_rune(s: &[u8], prev: char) -> (char, usize) {
    let mut size = 0;
    let mut t = s;
    while !t.is_empty() {
        let (r, sz) = gostr::decode_rune(t);
        size += sz.max(1);
        if !(r == gostr::RUNE_ERROR && sz <= 1) {
            return (r, size);
        }
        t = &t[sz.max(1)..];
    }
    (prev, size)
}

/// xstrings nextWord.
fn next_word(s: &[u8]) -> (WT, &[u8], &[u8]) {
    if s.is_empty() {
        return (WT::Invalid, b"", b"");
    }
    let mut offset;
    let mut remaining = s;
    let (mut r, mut size) = next_valid_rune(remaining, gostr::RUNE_ERROR);
    offset = size;
    if r == gostr::RUNE_ERROR {
        let off = offset.min(s.len());
        return (WT::Invalid, &s[..off], &s[off..]);
    }
    let wt;
    if is_connector(r) {
        wt = WT::Connector;
        remaining = &remaining[size.min(remaining.len())..];
        while !remaining.is_empty() {
            (r, size) = next_valid_rune(remaining, r);
            if !is_connector(r) {
                break;
            }
            offset += size;
            remaining = &remaining[size.min(remaining.len())..];
        }
    } else if uni::is_punct(r) {
        wt = WT::Punct;
        remaining = &remaining[size.min(remaining.len())..];
        while !remaining.is_empty() {
            (r, size) = next_valid_rune(remaining, r);
            if !uni::is_punct(r) {
                break;
            }
            offset += size;
            remaining = &remaining[size.min(remaining.len())..];
        }
    } else if uni::is_upper(r) {
        wt = WT::Upper;
        remaining = &remaining[size.min(remaining.len())..];
        if !remaining.is_empty() {
            (r, size) = next_valid_rune(remaining, r);
            if uni::is_upper(r) {
                let mut prev_size = size;
                offset += size;
                remaining = &remaining[size.min(remaining.len())..];
                while !remaining.is_empty() {
                    (r, size) = next_valid_rune(remaining, r);
                    if !uni::is_upper(r) {
                        break;
                    }
                    prev_size = size;
                    offset += size;
                    remaining = &remaining[size.min(remaining.len())..];
                }
                if !remaining.is_empty() && is_alphabet(r) {
                    offset -= prev_size;
                    remaining = &s[offset.min(s.len())..];
                }
            } else if is_alphabet(r) {
                offset += size;
                remaining = &remaining[size.min(remaining.len())..];
                while !remaining.is_empty() {
                    (r, size) = next_valid_rune(remaining, r);
                    if !is_alphabet(r) || uni::is_upper(r) {
                        break;
                    }
                    offset += size;
                    remaining = &remaining[size.min(remaining.len())..];
                }
            }
        }
    } else if is_alphabet(r) {
        wt = WT::Alpha;
        remaining = &remaining[size.min(remaining.len())..];
        while !remaining.is_empty() {
            (r, size) = next_valid_rune(remaining, r);
            if !is_alphabet(r) || uni::is_upper(r) {
                break;
            }
            offset += size;
            remaining = &remaining[size.min(remaining.len())..];
        }
    } else if uni::is_number(r) {
        wt = WT::Number;
        remaining = &remaining[size.min(remaining.len())..];
        while !remaining.is_empty() {
            (r, size) = next_valid_rune(remaining, r);
            if !uni::is_number(r) {
                break;
            }
            offset += size;
            remaining = &remaining[size.min(remaining.len())..];
        }
    } else {
        wt = WT::Other;
        remaining = &remaining[size.min(remaining.len())..];
        while !remaining.is_empty() {
            (r, size) = next_valid_rune(remaining, r);
            if size == 0
                || is_connector(r)
                || is_alphabet(r)
                || uni::is_number(r)
                || uni::is_punct(r)
            {
                break;
            }
            offset += size;
            remaining = &remaining[size.min(remaining.len())..];
        }
    }
    let off = offset.min(s.len());
    (wt, &s[..off], remaining)
}

fn to_lower_word(out: &mut Vec<u8>, wt: WT, s: &[u8], connector: char) {
    if wt != WT::Upper && wt != WT::Connector {
        out.extend_from_slice(s);
        return;
    }
    for (_, r, _) in gostr::runes(s) {
        if is_connector(r) {
            gostr::push_rune(out, connector);
        } else if uni::is_upper(r) {
            gostr::push_rune(out, uni::to_lower(r));
        } else {
            gostr::push_rune(out, r);
        }
    }
}

/// xstrings camelCaseToLowerCase (snakecase / kebabcase).
fn camel_to_lower(s: &[u8], connector: char) -> Vec<u8> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(s.len() + 8);
    let (mut wt, mut word, mut remaining) = next_word(s);
    let mut guard = 0usize;
    while !remaining.is_empty() {
        guard += 1;
        if guard > s.len() * 4 + 16 {
            break;
        }
        if wt != WT::Connector {
            to_lower_word(&mut out, wt, word, connector);
        }
        let prev = wt;
        let last = word;
        (wt, word, remaining) = next_word(remaining);
        match prev {
            WT::Number => {
                while wt == WT::Alpha || wt == WT::Number {
                    to_lower_word(&mut out, wt, word, connector);
                    (wt, word, remaining) = next_word(remaining);
                }
                if wt != WT::Invalid && wt != WT::Punct && wt != WT::Connector {
                    gostr::push_rune(&mut out, connector);
                }
            }
            WT::Connector => to_lower_word(&mut out, prev, last, connector),
            WT::Punct => {}
            _ => {
                if wt != WT::Number {
                    if wt != WT::Connector && wt != WT::Punct {
                        gostr::push_rune(&mut out, connector);
                    }
                    continue;
                }
                if remaining.is_empty() {
                    continue;
                }
                let last2 = word;
                (wt, word, remaining) = next_word(remaining);
                if wt != WT::Alpha {
                    to_lower_word(&mut out, WT::Number, last2, connector);
                    if wt != WT::Connector && wt != WT::Punct {
                        gostr::push_rune(&mut out, connector);
                    }
                    continue;
                }
                gostr::push_rune(&mut out, connector);
                to_lower_word(&mut out, WT::Number, last2, connector);
                while wt == WT::Alpha || wt == WT::Number {
                    to_lower_word(&mut out, wt, word, connector);
                    (wt, word, remaining) = next_word(remaining);
                }
                if wt != WT::Invalid && wt != WT::Connector && wt != WT::Punct {
                    gostr::push_rune(&mut out, connector);
                }
            }
        }
    }
    to_lower_word(&mut out, wt, word, connector);
    out
}

fn repeat(count: i64, s: &[u8]) -> FnResult {
    if count < 0 {
        return Err("strings: negative Repeat count".into());
    }
    let n = (count as u128) * (s.len() as u128);
    if n > MAX_STRING as u128 {
        return Err("result exceeds the size limit".into());
    }
    Ok(Value::string(s.repeat(count as usize)))
}

fn indent(spaces: i64, v: &[u8]) -> Result<Vec<u8>, String> {
    if spaces < 0 {
        return Err("strings: negative Repeat count".into());
    }
    let lines = v.iter().filter(|b| **b == b'\n').count() as u128 + 1;
    if (spaces as u128) * lines + v.len() as u128 > MAX_STRING as u128 {
        return Err("result exceeds the size limit".into());
    }
    let pad = vec![b' '; spaces as usize];
    let mut nl = b"\n".to_vec();
    nl.extend_from_slice(&pad);
    let mut out = pad.clone();
    out.extend_from_slice(&gostr::replace(v, b"\n", &nl, -1));
    Ok(out)
}

fn slice_bounds_err(lo: i64, hi: i64, len: usize, which: u8) -> String {
    match which {
        0 => format!("runtime error: slice bounds out of range [:{hi}] with length {len}"),
        1 => format!("runtime error: slice bounds out of range [{lo}:{len}]"),
        _ => format!("runtime error: slice bounds out of range [{lo}:{hi}]"),
    }
}

fn substr(start: i64, end: i64, s: &[u8]) -> FnResult {
    let len = s.len() as i64;
    if start < 0 {
        if end < 0 || end > len {
            return Err(slice_bounds_err(start, end, s.len(), 0));
        }
        return Ok(Value::str(&s[..end as usize]));
    }
    if end < 0 || end > len {
        if start > len {
            return Err(slice_bounds_err(start, end, s.len(), 1));
        }
        return Ok(Value::str(&s[start as usize..]));
    }
    if start > end {
        return Err(slice_bounds_err(start, end, s.len(), 2));
    }
    Ok(Value::str(&s[start as usize..end as usize]))
}

fn trunc(c: i64, s: &[u8]) -> Value {
    let len = s.len() as i64;
    if c < 0 && len + c > 0 {
        return Value::str(&s[(len + c) as usize..]);
    }
    if c >= 0 && len > c {
        return Value::str(&s[..c as usize]);
    }
    Value::str(s)
}

fn join_bytes(parts: &[Vec<u8>], sep: &[u8]) -> Result<Vec<u8>, String> {
    let total: usize = parts.iter().map(|p| p.len()).sum::<usize>()
        + sep.len().saturating_mul(parts.len().saturating_sub(1));
    check_len(total)?;
    Ok(parts.join(sep))
}

fn split_map(parts: Vec<Vec<u8>>) -> Value {
    let mut m = BTreeMap::new();
    for (i, p) in parts.into_iter().enumerate() {
        m.insert(format!("_{i}").into_bytes(), Value::string(p));
    }
    Value::map(m, MapT::Str)
}

fn quote_fn(_: &mut Ctx<'_>, a: Vec<Value>) -> FnResult {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for v in &a {
        if !is_nil_arg(v) {
            out.push(strconv::quote_bytes(&strval(v)?));
        }
    }
    join_bytes(&out, b" ").map(Value::string)
}

fn squote_fn(_: &mut Ctx<'_>, a: Vec<Value>) -> FnResult {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for v in &a {
        if !is_nil_arg(v) {
            let mut q = vec![b'\''];
            q.extend_from_slice(&printf::sprint_v(v).or_else(too_long)?);
            q.push(b'\'');
            out.push(q);
        }
    }
    join_bytes(&out, b" ").map(Value::string)
}

fn cat_fn(_: &mut Ctx<'_>, a: Vec<Value>) -> FnResult {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for v in &a {
        if !is_nil_arg(v) {
            out.push(printf::sprint_v(v).or_else(too_long)?);
        }
    }
    join_bytes(&out, b" ").map(Value::string)
}

// ---------------- lists ----------------

fn until_step(start: i64, stop: i64, step: i64) -> Result<Vec<i64>, String> {
    let mut v = Vec::new();
    if stop < start {
        if step >= 0 {
            return Ok(v);
        }
        let mut i = start;
        while i > stop {
            v.push(i);
            check_list(v.len())?;
            match i.checked_add(step) {
                Some(n) => i = n,
                None => break,
            }
        }
        return Ok(v);
    }
    if step <= 0 {
        return Ok(v);
    }
    let mut i = start;
    while i < stop {
        v.push(i);
        check_list(v.len())?;
        match i.checked_add(step) {
            Some(n) => i = n,
            None => break,
        }
    }
    Ok(v)
}

fn int_list(v: Vec<i64>) -> Value {
    Value::list(v.into_iter().map(Value::int).collect(), ListT::Int)
}

fn seq(params: &[i64]) -> FnResult {
    let r = match params.len() {
        0 => return Ok(Value::str("")),
        1 => {
            let (start, end) = (1i64, params[0]);
            let inc = if end < start { -1 } else { 1 };
            until_step(start, end.wrapping_add(inc), inc)?
        }
        3 => {
            let (start, end, step) = (params[0], params[2], params[1]);
            let mut inc = 1;
            if end < start {
                inc = -1;
                if step > 0 {
                    return Ok(Value::str(""));
                }
            }
            until_step(start, end.wrapping_add(inc), step)?
        }
        2 => {
            let (start, end) = (params[0], params[1]);
            let step = if end < start { -1 } else { 1 };
            until_step(start, end.wrapping_add(step), step)?
        }
        _ => return Ok(Value::str("")),
    };
    let parts: Vec<Vec<u8>> = r.iter().map(|n| n.to_string().into_bytes()).collect();
    join_bytes(&parts, b" ").map(Value::string)
}

fn slice_fn(_: &mut Ctx<'_>, a: Vec<Value>, must: bool) -> FnResult {
    let _ = must;
    let l = match &a[0] {
        Value::List(l) => l.clone(),
        Value::Nil | Value::Invalid => return Err(nil_deref()),
        v => {
            return Err(format!(
                "list should be type of slice or array but {}",
                v.kind_name()
            ));
        }
    };
    let len = l.items.len();
    if len == 0 {
        return Ok(Value::Nil);
    }
    let start = if a.len() > 1 { to_int64(&a[1]) } else { 0 };
    let end = if a.len() < 3 {
        len as i64
    } else {
        to_int64(&a[2])
    };
    if start < 0 || end < 0 || start > end || end as u64 > len as u64 {
        return Err("reflect: slice index out of range".to_string());
    }
    Ok(Value::List(Rc::new(List {
        items: l.items[start as usize..end as usize].to_vec(),
        t: l.t,
        nil: false,
    })))
}

fn in_list(c: &mut Ctx<'_>, hay: &[Value], needle: &Value) -> Result<bool, String> {
    for h in hay {
        if deep_equal(c, needle, h, 0)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn chunk(size: i64, l: &[Value]) -> FnResult {
    let n = l.len();
    if size <= 0 {
        if n == 0 && size < 0 {
            return Ok(Value::list(Vec::new(), ListT::ListIface));
        }
        return Err("runtime error: makeslice: len out of range".into());
    }
    let size = size as usize;
    let mut out = Vec::new();
    for ch in l.chunks(size) {
        out.push(iface_list(ch.to_vec()));
    }
    Ok(Value::list(out, ListT::ListIface))
}

// ---------------- dicts ----------------

fn map_arg(v: &Value) -> Option<Rc<RefCell<Map>>> {
    match v {
        Value::Map(m) => Some(m.clone()),
        _ => None,
    }
}

fn merge_into(
    c: &mut Ctx<'_>,
    dst: &Rc<RefCell<Map>>,
    src: &Rc<RefCell<Map>>,
    overwrite: bool,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_VALUE_DEPTH {
        return Err("value nesting too deep".into());
    }
    if Rc::ptr_eq(dst, src) {
        return Ok(());
    }
    let src_items: Vec<(Vec<u8>, Value)> = src
        .borrow()
        .items
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, sv) in src_items {
        c.charge(1)?;
        let dv = dst.borrow().items.get(&k).cloned();
        if matches!(sv, Value::Nil) {
            if overwrite {
                dst.borrow_mut().items.insert(k, Value::Nil);
            }
            continue;
        }
        if let (Value::Map(sm), Some(Value::Map(dm))) = (&sv, &dv) {
            merge_into(c, dm, sm, overwrite, depth + 1)?;
        }
        let d_empty = match &dv {
            None => true,
            Some(d) => empty(d),
        };
        if !d_empty {
            if matches!(sv, Value::List(_)) {
                if overwrite {
                    dst.borrow_mut().items.insert(k, sv);
                }
                continue;
            }
            if matches!(sv, Value::Map(_)) && matches!(dv, Some(Value::Map(_))) {
                continue;
            }
        }
        if overwrite || d_empty {
            let mut d = dst.borrow_mut();
            d.nil = false;
            d.items.insert(k, sv);
        }
    }
    Ok(())
}

fn merge_fn(c: &mut Ctx<'_>, a: Vec<Value>, overwrite: bool) -> FnResult {
    let Some(dst) = map_arg(&a[0]) else {
        return Ok(Value::str(""));
    };
    for src in &a[1..] {
        if let Some(sm) = map_arg(src) {
            merge_into(c, &dst, &sm, overwrite, 0)?;
        }
    }
    Ok(Value::Map(dst))
}

fn dig(c: &mut Ctx<'_>, a: Vec<Value>) -> FnResult {
    if a.len() < 3 {
        return Err("dig needs at least three arguments".into());
    }
    let n = a.len();
    let mut dict = match &a[n - 1] {
        Value::Map(m) if m.borrow().t == MapT::Iface => m.clone(),
        v => {
            return Err(format!(
                "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
                type_or_nil(v)
            ));
        }
    };
    let def = a[n - 2].clone();
    let mut keys = Vec::new();
    for k in &a[..n - 2] {
        match k {
            Value::Str(s) => keys.push(s.clone()),
            v => {
                return Err(format!(
                    "interface conversion: interface {{}} is {}, not string",
                    type_or_nil(v)
                ));
            }
        }
    }
    for (i, k) in keys.iter().enumerate() {
        c.charge(1)?;
        let step = dict.borrow().items.get(&k[..]).cloned();
        let Some(step) = step else {
            return Ok(def);
        };
        if i == keys.len() - 1 {
            return Ok(step);
        }
        dict = match &step {
            Value::Map(m) if m.borrow().t == MapT::Iface => m.clone(),
            v => {
                return Err(format!(
                    "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
                    type_or_nil(v)
                ));
            }
        };
    }
    Ok(def)
}

fn type_or_nil(v: &Value) -> String {
    match v {
        Value::Nil | Value::Invalid => "nil".into(),
        v => v.type_name(),
    }
}

// ---------------- math ----------------

fn div_i64(a: i64, b: i64) -> FnResult {
    if b == 0 {
        return Err("runtime error: integer divide by zero".into());
    }
    Ok(Value::int64(a.wrapping_div(b)))
}

fn mod_i64(a: i64, b: i64) -> FnResult {
    if b == 0 {
        return Err("runtime error: integer divide by zero".into());
    }
    Ok(Value::int64(a.wrapping_rem(b)))
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_infinite() && a > 0.0 || b.is_infinite() && b > 0.0 {
        return f64::INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { b } else { a }
    } else if a > b {
        a
    } else {
        b
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_infinite() && a < 0.0 || b.is_infinite() && b < 0.0 {
        return f64::NEG_INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

fn round(a: &Value, p: i64, ropt: &[Value]) -> f64 {
    let round_on = match ropt.first() {
        Some(Value::Float(f)) => *f,
        _ => 0.5,
    };
    let val = to_float64(a);
    let places = p as f64;
    let pow = 10f64.powf(places);
    let digit = pow * val;
    let div = digit - digit.trunc();
    let div = if digit.is_infinite() { f64::NAN } else { div };
    let r = if div >= round_on {
        digit.ceil()
    } else {
        digit.floor()
    };
    r / pow
}

fn to_decimal(v: &Value) -> Result<i64, String> {
    let s = printf::sprint_v(v).or_else(too_long)?;
    Ok(strconv::parse_int(&s, 8).unwrap_or(0))
}

// ---------------- paths ----------------

fn path_clean(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let rooted = p[0] == b'/';
    let n = p.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let mut r = 0;
    let mut dotdot = 0;
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        if p[r] == b'/' || (p[r] == b'.' && (r + 1 == n || p[r + 1] == b'/')) {
            r += 1;
        } else if p[r] == b'.' && p.get(r + 1) == Some(&b'.') && (r + 2 == n || p[r + 2] == b'/') {
            r += 2;
            if out.len() > dotdot {
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && p[r] != b'/' {
                out.push(p[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return b".".to_vec();
    }
    out
}

fn path_base(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let mut p = p;
    while p.len() > 1 && p.last() == Some(&b'/') {
        p = &p[..p.len() - 1];
    }
    if let Some(i) = p.iter().rposition(|b| *b == b'/') {
        p = &p[i + 1..];
    }
    if p.is_empty() {
        return b"/".to_vec();
    }
    p.to_vec()
}

fn path_dir(p: &[u8]) -> Vec<u8> {
    let split = p
        .iter()
        .rposition(|b| *b == b'/')
        .map(|i| i + 1)
        .unwrap_or(0);
    path_clean(&p[..split])
}

fn path_ext(p: &[u8]) -> Vec<u8> {
    let mut i = p.len();
    while i > 0 && p[i - 1] != b'/' {
        i -= 1;
        if p[i] == b'.' {
            return p[i..].to_vec();
        }
    }
    Vec::new()
}

// ---------------- random ----------------

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static STATE: std::collections::hash_map::RandomState = std::collections::hash_map::RandomState::new();
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    STATE.with(|s| {
        let mut h = s.build_hasher();
        h.write_u64(n);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        h.write_u64(t);
        h.finish()
    })
}

fn uuidv4() -> Vec<u8> {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&random_u64().to_le_bytes());
    b[8..].copy_from_slice(&random_u64().to_le_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = encoding::hex_encode(&b);
    let mut out = Vec::with_capacity(36);
    for (i, c) in h.iter().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push(b'-');
        }
        out.push(*c);
    }
    out
}

fn rand_string(count: i64, alphabet: &[u8]) -> FnResult {
    if count < 0 {
        return Err(format!(
            "Requested random string length {count} is less than 0."
        ));
    }
    check_len(count as usize)?;
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        out.push(alphabet[(random_u64() % alphabet.len() as u64) as usize]);
    }
    Ok(Value::string(out))
}

fn shuffle(s: &[u8]) -> Vec<u8> {
    let mut r: Vec<char> = gostr::runes(s).map(|(_, c, _)| c).collect();
    let n = r.len();
    for i in (1..n).rev() {
        let j = (random_u64() % (i as u64 + 1)) as usize;
        r.swap(i, j);
    }
    let mut out = Vec::with_capacity(s.len());
    for c in r {
        gostr::push_rune(&mut out, c);
    }
    out
}

// ---------------- the table ----------------

fn b(v: bool) -> FnResult {
    Ok(Value::Bool(v))
}

fn float_op(a: &Value, rest: &[Value], op: json::DecOp) -> FnResult {
    json::decimal_op(
        to_float64(a),
        &rest.iter().map(to_float64).collect::<Vec<_>>(),
        op,
    )
    .map(Value::Float)
}

pub(super) static FUNCS: &[FuncDef] = &[
    def!("hello", [], |_, _| Ok(Value::str("Hello!"))),
    // strings
    def!("abbrev", [Int, Str], |_, a| {
        let w = i(&a[0]);
        if w < 4 {
            return Ok(a[1].clone());
        }
        Ok(Value::string(abbreviate_full(s(&a[1]), 0, w)))
    }),
    def!("abbrevboth", [Int, Int, Str], |_, a| {
        let (l, r) = (i(&a[0]), i(&a[1]));
        if r < 4 || l > 0 && r < 7 {
            return Ok(a[2].clone());
        }
        Ok(Value::string(abbreviate_full(s(&a[2]), l, r)))
    }),
    def!("trunc", [Int, Str], |_, a| Ok(trunc(i(&a[0]), s(&a[1])))),
    def!("trim", [Str], |_, a| Ok(Value::str(gostr::trim_space(s(
        &a[0]
    ))))),
    def!("upper", [Str], |_, a| Ok(Value::string(gostr::to_upper(
        s(&a[0])
    )))),
    def!("lower", [Str], |_, a| Ok(Value::string(gostr::to_lower(
        s(&a[0])
    )))),
    def!("title", [Str], |_, a| Ok(Value::string(gostr::title(s(
        &a[0]
    ))))),
    def!("untitle", [Str], |_, a| Ok(Value::string(uncapitalize(s(
        &a[0]
    ))))),
    def!("substr", [Int, Int, Str], |_, a| substr(
        i(&a[0]),
        i(&a[1]),
        s(&a[2])
    )),
    def!("repeat", [Int, Str], |_, a| repeat(i(&a[0]), s(&a[1]))),
    def!("trimall", [Str, Str], |_, a| Ok(Value::str(gostr::trim(
        s(&a[1]),
        s(&a[0])
    )))),
    def!("trimAll", [Str, Str], |_, a| Ok(Value::str(gostr::trim(
        s(&a[1]),
        s(&a[0])
    )))),
    def!("trimSuffix", [Str, Str], |_, a| Ok(Value::str(
        gostr::trim_suffix(s(&a[1]), s(&a[0]))
    ))),
    def!("trimPrefix", [Str, Str], |_, a| Ok(Value::str(
        gostr::trim_prefix(s(&a[1]), s(&a[0]))
    ))),
    def!("nospace", [Str], |_, a| Ok(Value::string(nospace(
        s(&a[0])
    )))),
    def!("initials", [Str], |_, a| Ok(Value::string(initials(s(
        &a[0]
    ))))),
    def!("randAlphaNum", [Int], |_, a| rand_string(
        i(&a[0]),
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    )),
    def!("randAlpha", [Int], |_, a| rand_string(
        i(&a[0]),
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    )),
    def!("randAscii", [Int], |_, a| {
        rand_string(i(&a[0]), b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~")
    }),
    def!("randNumeric", [Int], |_, a| rand_string(
        i(&a[0]),
        b"0123456789"
    )),
    def!("swapcase", [Str], |_, a| Ok(Value::string(swapcase(s(
        &a[0]
    ))))),
    def!("shuffle", [Str], |_, a| Ok(Value::string(shuffle(
        s(&a[0])
    )))),
    def!("snakecase", [Str], |_, a| Ok(Value::string(
        camel_to_lower(s(&a[0]), '_')
    ))),
    def!("camelcase", [Str], |_, a| Ok(Value::string(pascal_case(
        s(&a[0])
    )))),
    def!("kebabcase", [Str], |_, a| Ok(Value::string(
        camel_to_lower(s(&a[0]), '-')
    ))),
    def!("wrap", [Int, Str], |_, a| Ok(Value::string(wrap_custom(
        s(&a[1]),
        i(&a[0]),
        b"",
        false
    )))),
    def!("wrapWith", [Int, Str, Str], |_, a| Ok(Value::string(
        wrap_custom(s(&a[2]), i(&a[0]), s(&a[1]), true)
    ))),
    def!("contains", [Str, Str], |_, a| b(gostr::contains(
        s(&a[1]),
        s(&a[0])
    ))),
    def!("hasPrefix", [Str, Str], |_, a| b(
        s(&a[1]).starts_with(s(&a[0]))
    )),
    def!("hasSuffix", [Str, Str], |_, a| b(
        s(&a[1]).ends_with(s(&a[0]))
    )),
    def!("quote", [], *Any, quote_fn),
    def!("squote", [], *Any, squote_fn),
    def!("cat", [], *Any, cat_fn),
    def!("indent", [Int, Str], |_, a| indent(i(&a[0]), s(&a[1]))
        .map(Value::string)),
    def!("nindent", [Int, Str], |_, a| {
        let mut out = b"\n".to_vec();
        out.extend_from_slice(&indent(i(&a[0]), s(&a[1]))?);
        Ok(Value::string(out))
    }),
    def!("replace", [Str, Str, Str], |_, a| {
        let (old, new, src) = (s(&a[0]), s(&a[1]), s(&a[2]));
        check_len(gostr::replace_len(src, old, new, -1))?;
        Ok(Value::string(gostr::replace(src, old, new, -1)))
    }),
    def!("plural", [Str, Str, Int], |_, a| Ok(if i(&a[2]) == 1 {
        a[0].clone()
    } else {
        a[1].clone()
    })),
    def!("sha1sum", [Str], |_, a| {
        use sha1::Digest;
        Ok(Value::string(encoding::hex_encode(&sha1::Sha1::digest(s(
            &a[0],
        )))))
    }),
    def!("sha256sum", [Str], |_, a| {
        use sha2::Digest;
        Ok(Value::string(encoding::hex_encode(&sha2::Sha256::digest(
            s(&a[0]),
        ))))
    }),
    def!("sha512sum", [Str], |_, a| {
        use sha2::Digest;
        Ok(Value::string(encoding::hex_encode(&sha2::Sha512::digest(
            s(&a[0]),
        ))))
    }),
    def!("adler32sum", [Str], |_, a| Ok(Value::string(
        encoding::adler32(s(&a[0])).to_string().into_bytes()
    ))),
    def!("toString", [Any], |_, a| strval(&a[0]).map(Value::string)),
    // conversion
    def!("atoi", [Str], |_, a| Ok(Value::int(
        match strconv::atoi(s(&a[0])) {
            Ok(v) => v,
            Err((v, _)) => v,
        }
    ))),
    def!("int64", [Any], |_, a| Ok(Value::int64(to_int64(&a[0])))),
    def!("int", [Any], |_, a| Ok(Value::int(to_int64(&a[0])))),
    def!("float64", [Any], |_, a| Ok(Value::Float(to_float64(&a[0])))),
    def!("seq", [], *Int, |_, a| seq(&a
        .iter()
        .map(i)
        .collect::<Vec<_>>())),
    def!("toDecimal", [Any], |_, a| to_decimal(&a[0])
        .map(Value::int64)),
    def!("split", [Str, Str], |_, a| {
        check_list(gostr::count(s(&a[1]), s(&a[0])))?;
        Ok(split_map(gostr::split_n(s(&a[1]), s(&a[0]), -1)))
    }),
    def!("splitList", [Str, Str], |_, a| {
        check_list(gostr::count(s(&a[1]), s(&a[0])))?;
        Ok(Value::str_list(gostr::split_n(s(&a[1]), s(&a[0]), -1)))
    }),
    def!("splitn", [Str, Int, Str], |_, a| {
        check_list(gostr::count(s(&a[2]), s(&a[0])).min(i(&a[1]).max(0) as usize))?;
        Ok(split_map(gostr::split_n(s(&a[2]), s(&a[0]), i(&a[1]))))
    }),
    def!("toStrings", [Any], |_, a| Ok(Value::str_list(strslice(
        &a[0]
    )?))),
    def!("until", [Int], |_, a| {
        let c = i(&a[0]);
        let step = if c < 0 { -1 } else { 1 };
        until_step(0, c, step).map(int_list)
    }),
    def!("untilStep", [Int, Int, Int], |_, a| until_step(
        i(&a[0]),
        i(&a[1]),
        i(&a[2])
    )
    .map(int_list)),
    // math
    def!("add1", [Any], |_, a| Ok(Value::int64(
        to_int64(&a[0]).wrapping_add(1)
    ))),
    def!("add", [], *Any, |_, a| Ok(Value::int64(
        a.iter().fold(0i64, |acc, v| acc.wrapping_add(to_int64(v)))
    ))),
    def!("sub", [Any, Any], |_, a| Ok(Value::int64(
        to_int64(&a[0]).wrapping_sub(to_int64(&a[1]))
    ))),
    def!("div", [Any, Any], |_, a| div_i64(
        to_int64(&a[0]),
        to_int64(&a[1])
    )),
    def!("mod", [Any, Any], |_, a| mod_i64(
        to_int64(&a[0]),
        to_int64(&a[1])
    )),
    def!("mul", [Any], *Any, |_, a| Ok(Value::int64(
        a[1..]
            .iter()
            .fold(to_int64(&a[0]), |acc, v| acc.wrapping_mul(to_int64(v)))
    ))),
    def!("randInt", [Int, Int], |_, a| {
        let (min, max) = (i(&a[0]), i(&a[1]));
        let n = max.wrapping_sub(min);
        if n <= 0 {
            return Err("invalid argument to Intn".into());
        }
        Ok(Value::int((random_u64() % n as u64) as i64 + min))
    }),
    def!("add1f", [Any], |_, a| float_op(
        &a[0],
        &[Value::int(1)],
        json::DecOp::Add
    )),
    def!("addf", [], *Any, |_, a| float_op(
        &Value::Float(0.0),
        &a,
        json::DecOp::Add
    )),
    def!("subf", [Any], *Any, |_, a| float_op(
        &a[0],
        &a[1..],
        json::DecOp::Sub
    )),
    def!("divf", [Any], *Any, |_, a| float_op(
        &a[0],
        &a[1..],
        json::DecOp::Div
    )),
    def!("mulf", [Any], *Any, |_, a| float_op(
        &a[0],
        &a[1..],
        json::DecOp::Mul
    )),
    def!("biggest", [Any], *Any, |_, a| Ok(Value::int64(
        a[1..]
            .iter()
            .fold(to_int64(&a[0]), |m, v| m.max(to_int64(v)))
    ))),
    def!("max", [Any], *Any, |_, a| Ok(Value::int64(
        a[1..]
            .iter()
            .fold(to_int64(&a[0]), |m, v| m.max(to_int64(v)))
    ))),
    def!("min", [Any], *Any, |_, a| Ok(Value::int64(
        a[1..]
            .iter()
            .fold(to_int64(&a[0]), |m, v| m.min(to_int64(v)))
    ))),
    def!("maxf", [Any], *Any, |_, a| Ok(Value::Float(
        a[1..]
            .iter()
            .fold(to_float64(&a[0]), |m, v| go_max(m, to_float64(v)))
    ))),
    def!("minf", [Any], *Any, |_, a| Ok(Value::Float(
        a[1..]
            .iter()
            .fold(to_float64(&a[0]), |m, v| go_min(m, to_float64(v)))
    ))),
    def!("ceil", [Any], |_, a| Ok(Value::Float(
        to_float64(&a[0]).ceil()
    ))),
    def!("floor", [Any], |_, a| Ok(Value::Float(
        to_float64(&a[0]).floor()
    ))),
    def!("round", [Any, Int], *Float, |_, a| Ok(Value::Float(round(
        &a[0],
        i(&a[1]),
        &a[2..]
    )))),
    // string slices
    def!("join", [Str, Any], |_, a| join_bytes(
        &strslice(&a[1])?,
        s(&a[0])
    )
    .map(Value::string)),
    def!("sortAlpha", [Any], |_, a| {
        match &a[0] {
            Value::List(_) => {
                let mut v = strslice(&a[0])?;
                v.sort();
                Ok(Value::str_list(v))
            }
            v => Ok(Value::str_list(vec![strval(v)?])),
        }
    }),
    // defaults
    def!("default", [Any], *Any, |_, a| {
        if a.len() < 2 || empty(&a[1]) {
            return Ok(a[0].clone());
        }
        Ok(a[1].clone())
    }),
    def!("empty", [Any], |_, a| b(empty(&a[0]))),
    def!("coalesce", [], *Any, |_, a| Ok(a
        .iter()
        .find(|v| !empty(v))
        .cloned()
        .unwrap_or(Value::Nil))),
    def!("all", [], *Any, |_, a| b(a.iter().all(|v| !empty(v)))),
    def!("any", [], *Any, |_, a| b(a.iter().any(|v| !empty(v)))),
    def!("compact", [Any], |_, a| {
        let l = slice_items(&a[0], "compact")?;
        Ok(iface_list(
            l.items.iter().filter(|v| !empty(v)).cloned().collect(),
        ))
    }),
    def!("mustCompact", [Any], |_, a| {
        let l = slice_items(&a[0], "compact")?;
        Ok(iface_list(
            l.items.iter().filter(|v| !empty(v)).cloned().collect(),
        ))
    }),
    def!("fromJson", [Str], |c, a| Ok(
        json::from_json(c, s(&a[0])).unwrap_or(Value::Nil)
    )),
    def!("mustFromJson", [Str], |c, a| json::from_json(c, s(&a[0]))),
    def!("toJson", [Any], |c, a| json::to_json_lenient(
        c,
        &a[0],
        json::Style::Plain
    )
    .map(Value::string)),
    def!("toPrettyJson", [Any], |c, a| json::to_json_lenient(
        c,
        &a[0],
        json::Style::Pretty
    )
    .map(Value::string)),
    def!("toRawJson", [Any], |c, a| json::to_json_strict(
        c,
        &a[0],
        json::Style::Raw
    )
    .map(Value::string)),
    def!("mustToJson", [Any], |c, a| json::to_json_strict(
        c,
        &a[0],
        json::Style::Plain
    )
    .map(Value::string)),
    def!("mustToPrettyJson", [Any], |c, a| json::to_json_strict(
        c,
        &a[0],
        json::Style::Pretty
    )
    .map(Value::string)),
    def!("mustToRawJson", [Any], |c, a| json::to_json_strict(
        c,
        &a[0],
        json::Style::Raw
    )
    .map(Value::string)),
    def!("ternary", [Any, Any, Bool], |_, a| Ok(
        if matches!(a[2], Value::Bool(true)) {
            a[0].clone()
        } else {
            a[1].clone()
        }
    )),
    def!("deepCopy", [Any], |c, a| deep_copy(c, &a[0], 0)),
    def!("mustDeepCopy", [Any], |c, a| deep_copy(c, &a[0], 0)),
    // reflection
    def!("typeOf", [Any], |_, a| Ok(Value::string(
        a[0].type_name().into_bytes()
    ))),
    def!("typeIs", [Str, Any], |_, a| b(
        s(&a[0]) == a[1].type_name().as_bytes()
    )),
    def!("typeIsLike", [Str, Any], |_, a| {
        let t = a[1].type_name();
        let target = s(&a[0]);
        let mut star = b"*".to_vec();
        star.extend_from_slice(target);
        b(target == t.as_bytes() || star == t.as_bytes())
    }),
    def!("kindOf", [Any], |_, a| Ok(Value::str(a[0].kind_name()))),
    def!("kindIs", [Str, Any], |_, a| b(
        s(&a[0]) == a[1].kind_name().as_bytes()
    )),
    def!("deepEqual", [Any, Any], |c, a| deep_equal(
        c, &a[0], &a[1], 0
    )
    .map(Value::Bool)),
    // OS / network
    def!("env", [Str], |_, a| {
        let k = gostr::to_string_lossy(s(&a[0]));
        Ok(Value::string(
            std::env::var_os(k)
                .map(|v| v.into_encoded_bytes())
                .unwrap_or_default(),
        ))
    }),
    def!("expandenv", [Str], |_, a| Ok(Value::string(
        encoding::expand_env(s(&a[0]))
    ))),
    def!("getHostByName", [Str], unsupported),
    // paths
    def!("base", [Str], |_, a| Ok(Value::string(path_base(s(&a[0]))))),
    def!("dir", [Str], |_, a| Ok(Value::string(path_dir(s(&a[0]))))),
    def!("clean", [Str], |_, a| Ok(Value::string(path_clean(s(
        &a[0]
    ))))),
    def!("ext", [Str], |_, a| Ok(Value::string(path_ext(s(&a[0]))))),
    def!("isAbs", [Str], |_, a| b(s(&a[0]).first() == Some(&b'/'))),
    def!("osBase", [Str], |_, a| Ok(Value::string(path_base(s(
        &a[0]
    ))))),
    def!("osClean", [Str], |_, a| Ok(Value::string(path_clean(s(
        &a[0]
    ))))),
    def!("osDir", [Str], |_, a| Ok(Value::string(path_dir(s(&a[0]))))),
    def!("osExt", [Str], |_, a| Ok(Value::string(path_ext(s(&a[0]))))),
    def!("osIsAbs", [Str], |_, a| b(s(&a[0]).first() == Some(&b'/'))),
    // encoding
    def!("b64enc", [Str], |_, a| Ok(Value::string(
        encoding::b64_encode(s(&a[0]))
    ))),
    def!("b64dec", [Str], |_, a| Ok(Value::string(
        match encoding::b64_decode(s(&a[0])) {
            Ok(v) => v,
            Err(e) => e.into_bytes(),
        }
    ))),
    def!("b32enc", [Str], |_, a| Ok(Value::string(
        encoding::b32_encode(s(&a[0]))
    ))),
    def!("b32dec", [Str], |_, a| Ok(Value::string(
        match encoding::b32_decode(s(&a[0])) {
            Ok(v) => v,
            Err(e) => e.into_bytes(),
        }
    ))),
    // data structures
    def!("tuple", [], *Any, |_, a| Ok(iface_list(a))),
    def!("list", [], *Any, |_, a| Ok(iface_list(a))),
    def!("dict", [], *Any, |_, a| {
        let mut m = BTreeMap::new();
        let mut i = 0;
        while i < a.len() {
            let k = strval(&a[i])?;
            let v = if i + 1 < a.len() {
                a[i + 1].clone()
            } else {
                Value::str("")
            };
            m.insert(k, v);
            i += 2;
        }
        Ok(Value::map(m, MapT::Iface))
    }),
    def!("get", [Map, Str], |_, a| {
        let m = map_arg(&a[0]).ok_or_else(nil_deref)?;
        let r = m.borrow().items.get(s(&a[1])).cloned();
        Ok(r.unwrap_or_else(|| Value::str("")))
    }),
    def!("set", [Map, Str, Any], |_, a| {
        let m = map_arg(&a[0]).ok_or_else(nil_deref)?;
        if m.borrow().nil {
            return Err("assignment to entry in nil map".into());
        }
        m.borrow_mut().items.insert(s(&a[1]).to_vec(), a[2].clone());
        Ok(Value::Map(m))
    }),
    def!("unset", [Map, Str], |_, a| {
        let m = map_arg(&a[0]).ok_or_else(nil_deref)?;
        m.borrow_mut().items.remove(s(&a[1]));
        Ok(Value::Map(m))
    }),
    def!("hasKey", [Map, Str], |_, a| {
        let m = map_arg(&a[0]).ok_or_else(nil_deref)?;
        let r = m.borrow().items.contains_key(s(&a[1]));
        b(r)
    }),
    def!("pluck", [Str], *Map, |_, a| {
        let mut out = Vec::new();
        for d in &a[1..] {
            if let Some(m) = map_arg(d)
                && let Some(v) = m.borrow().items.get(s(&a[0]))
            {
                out.push(v.clone());
            }
        }
        Ok(iface_list(out))
    }),
    def!("keys", [], *Map, |_, a| {
        let mut out = Vec::new();
        for d in &a {
            if let Some(m) = map_arg(d) {
                out.extend(m.borrow().items.keys().cloned());
            }
        }
        check_list(out.len())?;
        Ok(Value::str_list(out))
    }),
    def!("pick", [Map], *Str, |_, a| {
        let m = map_arg(&a[0]).ok_or_else(nil_deref)?;
        let m = m.borrow();
        let mut out = BTreeMap::new();
        for k in &a[1..] {
            if let Some(v) = m.items.get(s(k)) {
                out.insert(s(k).to_vec(), v.clone());
            }
        }
        Ok(Value::map(out, MapT::Iface))
    }),
    def!("omit", [Map], *Str, |_, a| {
        let m = map_arg(&a[0]).ok_or_else(nil_deref)?;
        let m = m.borrow();
        let mut out = BTreeMap::new();
        for (k, v) in &m.items {
            if !a[1..].iter().any(|x| s(x) == &k[..]) {
                out.insert(k.clone(), v.clone());
            }
        }
        Ok(Value::map(out, MapT::Iface))
    }),
    def!("merge", [Map], *Map, |c, a| merge_fn(c, a, false)),
    def!("mergeOverwrite", [Map], *Map, |c, a| merge_fn(c, a, true)),
    def!("mustMerge", [Map], *Map, |c, a| merge_fn(c, a, false)),
    def!("mustMergeOverwrite", [Map], *Map, |c, a| merge_fn(
        c, a, true
    )),
    def!("values", [Map], |_, a| {
        let m = map_arg(&a[0]).ok_or_else(nil_deref)?;
        let v: Vec<Value> = m.borrow().items.values().cloned().collect();
        Ok(iface_list(v))
    }),
    def!("append", [Any, Any], |_, a| push(a, false)),
    def!("push", [Any, Any], |_, a| push(a, false)),
    def!("mustAppend", [Any, Any], |_, a| push(a, false)),
    def!("mustPush", [Any, Any], |_, a| push(a, false)),
    def!("prepend", [Any, Any], |_, a| push(a, true)),
    def!("mustPrepend", [Any, Any], |_, a| push(a, true)),
    def!("first", [Any], |_, a| first_last(&a[0], true)),
    def!("mustFirst", [Any], |_, a| first_last(&a[0], true)),
    def!("last", [Any], |_, a| first_last(&a[0], false)),
    def!("mustLast", [Any], |_, a| first_last(&a[0], false)),
    def!("rest", [Any], |_, a| rest_initial(&a[0], true)),
    def!("mustRest", [Any], |_, a| rest_initial(&a[0], true)),
    def!("initial", [Any], |_, a| rest_initial(&a[0], false)),
    def!("mustInitial", [Any], |_, a| rest_initial(&a[0], false)),
    def!("reverse", [Any], |_, a| {
        let l = slice_items(&a[0], "find reverse")?;
        Ok(iface_list(l.items.iter().rev().cloned().collect()))
    }),
    def!("mustReverse", [Any], |_, a| {
        let l = slice_items(&a[0], "find reverse")?;
        Ok(iface_list(l.items.iter().rev().cloned().collect()))
    }),
    def!("uniq", [Any], uniq),
    def!("mustUniq", [Any], uniq),
    def!("without", [Any], *Any, without),
    def!("mustWithout", [Any], *Any, without),
    def!("has", [Any, Any], has),
    def!("mustHas", [Any, Any], has),
    def!("slice", [Any], *Any, |c, a| slice_fn(c, a, false)),
    def!("mustSlice", [Any], *Any, |c, a| slice_fn(c, a, true)),
    def!("concat", [], *Any, |_, a| {
        let mut out: Vec<Value> = Vec::new();
        for l in &a {
            match l {
                Value::List(l) => out.extend(l.items.iter().cloned()),
                Value::Nil | Value::Invalid => return Err(nil_deref()),
                v => return Err(format!("Cannot concat type {} as list", v.kind_name())),
            }
            check_list(out.len())?;
        }
        if a.is_empty() {
            return Ok(Value::nil_list(ListT::Iface));
        }
        Ok(iface_list(out))
    }),
    def!("dig", [], *Any, dig),
    def!("chunk", [Int, Any], |_, a| {
        let l = slice_items(&a[1], "chunk")?;
        chunk(i(&a[0]), &l.items)
    }),
    def!("mustChunk", [Int, Any], |_, a| {
        let l = slice_items(&a[1], "chunk")?;
        chunk(i(&a[0]), &l.items)
    }),
    // crypto (not supported: key material, randomness, bcrypt)
    def!("bcrypt", [Str], unsupported),
    def!("htpasswd", [Str, Str], unsupported),
    def!("genPrivateKey", [Str], unsupported),
    def!("derivePassword", [Any, Str, Str, Str, Str], unsupported),
    def!("buildCustomCert", [Str, Str], unsupported),
    def!("genCA", [Str, Int], unsupported),
    def!("genCAWithKey", [Str, Int, Str], unsupported),
    def!("genSelfSignedCert", [Str, Any, Any, Int], unsupported),
    def!(
        "genSelfSignedCertWithKey",
        [Str, Any, Any, Int, Str],
        unsupported
    ),
    def!("genSignedCert", [Str, Any, Any, Int, Any], unsupported),
    def!(
        "genSignedCertWithKey",
        [Str, Any, Any, Int, Any, Str],
        unsupported
    ),
    def!("encryptAES", [Str, Str], unsupported),
    def!("decryptAES", [Str, Str], unsupported),
    def!("randBytes", [Int], |_, a| {
        let n = i(&a[0]);
        if n < 0 {
            return Err("runtime error: makeslice: len out of range".into());
        }
        check_len(n as usize * 2)?;
        let bytes: Vec<u8> = (0..n).map(|_| random_u64() as u8).collect();
        Ok(Value::string(encoding::b64_encode(&bytes)))
    }),
    def!("uuidv4", [], |_, _| Ok(Value::string(uuidv4()))),
    def!("fail", [Str], |_, a| Err(gostr::to_string_lossy(s(&a[0])))),
    // regex
    def!(
        "regexMatch",
        [Str, Str],
        |c, a| match goregex::compile(c, s(&a[0])) {
            Ok(re) => b(goregex::is_match(c, &re, s(&a[1]))?),
            Err(_) => b(false),
        }
    ),
    def!("mustRegexMatch", [Str, Str], |c, a| {
        let re = goregex::compile(c, s(&a[0]))?;
        b(goregex::is_match(c, &re, s(&a[1]))?)
    }),
    def!("regexFindAll", [Str, Str, Int], |c, a| {
        let re = goregex::must_compile(c, s(&a[0]))?;
        goregex::find_all(c, &re, s(&a[1]), i(&a[2]))
    }),
    def!("mustRegexFindAll", [Str, Str, Int], |c, a| {
        let re = goregex::compile(c, s(&a[0]))?;
        goregex::find_all(c, &re, s(&a[1]), i(&a[2]))
    }),
    def!("regexFind", [Str, Str], |c, a| {
        let re = goregex::must_compile(c, s(&a[0]))?;
        goregex::find(c, &re, s(&a[1])).map(Value::string)
    }),
    def!("mustRegexFind", [Str, Str], |c, a| {
        let re = goregex::compile(c, s(&a[0]))?;
        goregex::find(c, &re, s(&a[1])).map(Value::string)
    }),
    def!("regexReplaceAll", [Str, Str, Str], |c, a| {
        let re = goregex::must_compile(c, s(&a[0]))?;
        goregex::replace_all(c, &re, s(&a[1]), s(&a[2]), false).map(Value::string)
    }),
    def!("mustRegexReplaceAll", [Str, Str, Str], |c, a| {
        let re = goregex::compile(c, s(&a[0]))?;
        goregex::replace_all(c, &re, s(&a[1]), s(&a[2]), false).map(Value::string)
    }),
    def!("regexReplaceAllLiteral", [Str, Str, Str], |c, a| {
        let re = goregex::must_compile(c, s(&a[0]))?;
        goregex::replace_all(c, &re, s(&a[1]), s(&a[2]), true).map(Value::string)
    }),
    def!("mustRegexReplaceAllLiteral", [Str, Str, Str], |c, a| {
        let re = goregex::compile(c, s(&a[0]))?;
        goregex::replace_all(c, &re, s(&a[1]), s(&a[2]), true).map(Value::string)
    }),
    def!("regexSplit", [Str, Str, Int], |c, a| {
        let re = goregex::must_compile(c, s(&a[0]))?;
        goregex::split(c, &re, s(&a[1]), i(&a[2]))
    }),
    def!("mustRegexSplit", [Str, Str, Int], |c, a| {
        let re = goregex::compile(c, s(&a[0]))?;
        goregex::split(c, &re, s(&a[1]), i(&a[2]))
    }),
    def!("regexQuoteMeta", [Str], |_, a| Ok(Value::string(
        goregex::quote_meta(s(&a[0]))
    ))),
    // URLs
    def!("urlParse", [Str], |_, a| encoding::url_parse(s(&a[0]))),
    def!("urlJoin", [Map], |_, a| encoding::url_join(&a[0])),
];

fn push(a: Vec<Value>, front: bool) -> FnResult {
    let l = slice_items(&a[0], if front { "prepend" } else { "push" })?;
    check_list(l.items.len() + 1)?;
    let mut items = Vec::with_capacity(l.items.len() + 1);
    if front {
        items.push(a[1].clone());
        items.extend(l.items.iter().cloned());
    } else {
        items.extend(l.items.iter().cloned());
        items.push(a[1].clone());
    }
    Ok(iface_list(items))
}

fn first_last(v: &Value, first: bool) -> FnResult {
    let l = slice_items(v, if first { "find first" } else { "find last" })?;
    let r = if first {
        l.items.first()
    } else {
        l.items.last()
    };
    Ok(r.cloned().unwrap_or(Value::Nil))
}

fn rest_initial(v: &Value, rest: bool) -> FnResult {
    let l = slice_items(v, if rest { "find rest" } else { "find initial" })?;
    if l.items.is_empty() {
        return Ok(Value::nil_list(ListT::Iface));
    }
    let n = l.items.len();
    let items = if rest {
        l.items[1..].to_vec()
    } else {
        l.items[..n - 1].to_vec()
    };
    Ok(iface_list(items))
}

fn uniq(c: &mut Ctx<'_>, a: Vec<Value>) -> FnResult {
    let l = slice_items(&a[0], "find uniq")?;
    let mut dest: Vec<Value> = Vec::new();
    for item in &l.items {
        if !in_list(c, &dest, item)? {
            dest.push(item.clone());
        }
    }
    Ok(iface_list(dest))
}

fn without(c: &mut Ctx<'_>, a: Vec<Value>) -> FnResult {
    let l = slice_items(&a[0], "find without")?;
    let omit = &a[1..];
    let mut res = Vec::new();
    for item in &l.items {
        if !in_list(c, omit, item)? {
            res.push(item.clone());
        }
    }
    Ok(iface_list(res))
}

fn has(c: &mut Ctx<'_>, a: Vec<Value>) -> FnResult {
    match &a[1] {
        Value::Nil | Value::Invalid => b(false),
        Value::List(l) => {
            let l = l.clone();
            b(in_list(c, &l.items, &a[0])?)
        }
        v => Err(format!("Cannot find has on type {}", v.kind_name())),
    }
}

#[allow(dead_code)]
fn unused(_: UintT) {}
