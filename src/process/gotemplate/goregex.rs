//! Go `regexp` (RE2 syntax) on top of the `regex` crate: a syntax translator
//! that accepts what Go accepts (and rejects what it rejects, as far as
//! practical), plus Go's FindAll / ReplaceAll / Split / Expand loops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use regex::bytes::{Regex, RegexBuilder};

use super::exec::{Ctx, FnResult};
use super::value::Value;
use super::{MAX_LIST, MAX_REGEX_SIZE, MAX_STRING, gostr, printf, unicode as uni};

pub(super) struct GoRegex {
    re: Regex,
    expr_empty: bool,
    /// Capture names by group index (index 0 is the whole match).
    names: Vec<Option<Vec<u8>>>,
}

type Compiled = Result<Arc<GoRegex>, String>;

/// A per-template cache of compiled expressions.
#[derive(Default)]
pub(super) struct Cache {
    map: Mutex<HashMap<Vec<u8>, Compiled>>,
}

const CACHE_MAX: usize = 256;

fn err_parse(code: &str, expr: &str) -> String {
    format!("error parsing regexp: {code}: `{expr}`")
}

fn hexesc(c: char) -> String {
    format!("\\x{{{:X}}}", c as u32)
}

/// Emits a literal character for use outside or inside a class.
fn lit(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() || !c.is_ascii() && !c.is_control() {
        out.push(c);
    } else {
        out.push_str(&hexesc(c));
    }
}

struct Tr<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
    out: String,
    names: Vec<Option<Vec<u8>>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// start of expression, after '(' or '|'
    Empty,
    Atom,
    Repeat,
}

impl<'a> Tr<'a> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).map(|x| x.1)
    }

    fn rest(&self) -> &'a str {
        match self.chars.get(self.i) {
            Some((off, _)) => &self.src[*off..],
            None => "",
        }
    }

    fn from(&self, start: usize) -> &'a str {
        let a = self.chars.get(start).map(|x| x.0).unwrap_or(self.src.len());
        let b = self
            .chars
            .get(self.i)
            .map(|x| x.0)
            .unwrap_or(self.src.len());
        &self.src[a..b.max(a)]
    }

    /// Parses an escape after '\' (already consumed). Returns the emitted
    /// Rust syntax, and whether it is a character class (usable in classes).
    fn escape(&mut self, in_class: bool) -> Result<Esc, String> {
        let start = self.i - 1;
        let Some(c) = self.peek() else {
            return Err(err_parse("trailing backslash at end of expression", ""));
        };
        self.i += 1;
        match c {
            '1'..='7' => {
                if !matches!(self.peek(), Some('0'..='7')) {
                    return Err(err_parse("invalid escape sequence", self.from(start)));
                }
                self.octal(c)
            }
            '0' => self.octal(c),
            'x' => match self.peek() {
                Some('{') => {
                    self.i += 1;
                    let mut v: u32 = 0;
                    let mut n = 0;
                    loop {
                        match self.peek() {
                            Some('}') => {
                                self.i += 1;
                                break;
                            }
                            Some(h) if h.is_ascii_hexdigit() => {
                                v = v
                                    .saturating_mul(16)
                                    .saturating_add(h.to_digit(16).unwrap_or(0));
                                n += 1;
                                self.i += 1;
                                if v > 0x10FFFF {
                                    return Err(err_parse(
                                        "invalid escape sequence",
                                        self.from(start),
                                    ));
                                }
                            }
                            _ => {
                                return Err(err_parse("invalid escape sequence", self.from(start)));
                            }
                        }
                    }
                    if n == 0 {
                        return Err(err_parse("invalid escape sequence", self.from(start)));
                    }
                    match char::from_u32(v) {
                        Some(ch) => Ok(Esc::Char(ch)),
                        None => Err(err_parse("invalid escape sequence", self.from(start))),
                    }
                }
                _ => {
                    let mut v = 0u32;
                    for _ in 0..2 {
                        match self.peek() {
                            Some(h) if h.is_ascii_hexdigit() => {
                                v = v * 16 + h.to_digit(16).unwrap_or(0);
                                self.i += 1;
                            }
                            _ => {
                                return Err(err_parse("invalid escape sequence", self.from(start)));
                            }
                        }
                    }
                    Ok(Esc::Char(char::from_u32(v).unwrap_or('\0')))
                }
            },
            'a' => Ok(Esc::Char('\u{7}')),
            'f' => Ok(Esc::Char('\u{c}')),
            't' => Ok(Esc::Char('\t')),
            'n' => Ok(Esc::Char('\n')),
            'r' => Ok(Esc::Char('\r')),
            'v' => Ok(Esc::Char('\u{b}')),
            'd' => Ok(Esc::Class("0-9".into(), false)),
            'D' => Ok(Esc::Class("0-9".into(), true)),
            's' => Ok(Esc::Class("\\t\\n\\x{C}\\r ".into(), false)),
            'S' => Ok(Esc::Class("\\t\\n\\x{C}\\r ".into(), true)),
            'w' => Ok(Esc::Class("0-9A-Za-z_".into(), false)),
            'W' => Ok(Esc::Class("0-9A-Za-z_".into(), true)),
            'p' | 'P' => {
                let neg0 = c == 'P';
                let name: String = match self.peek() {
                    Some('{') => {
                        self.i += 1;
                        let s0 = self.i;
                        while let Some(ch) = self.peek() {
                            if ch == '}' {
                                break;
                            }
                            self.i += 1;
                        }
                        if self.peek() != Some('}') {
                            return Err(err_parse(
                                "invalid character class range",
                                self.from(start),
                            ));
                        }
                        let n = self.from(s0).to_string();
                        self.i += 1;
                        n
                    }
                    Some(ch) => {
                        self.i += 1;
                        ch.to_string()
                    }
                    None => {
                        return Err(err_parse("invalid character class range", self.from(start)));
                    }
                };
                let (neg, name) = match name.strip_prefix('^') {
                    Some(n) => (!neg0, n.to_string()),
                    None => (neg0, name),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(err_parse("invalid character class range", self.from(start)));
                }
                let cls = if name == "Any" {
                    "\\x{0}-\\x{10FFFF}".to_string()
                } else {
                    format!("\\p{{{name}}}")
                };
                Ok(Esc::Class(cls, neg))
            }
            'A' | 'z' if !in_class => Ok(Esc::Raw(format!("\\{c}"))),
            'b' if !in_class => Ok(Esc::Raw("(?-u:\\b)".into())),
            'B' if !in_class => Ok(Esc::Raw("(?-u:\\B)".into())),
            'Q' if !in_class => {
                let mut s = String::new();
                let rest = self.rest();
                let (lit_part, consumed) = match rest.find("\\E") {
                    Some(p) => (&rest[..p], p + 2),
                    None => (rest, rest.len()),
                };
                for ch in lit_part.chars() {
                    lit(&mut s, ch);
                }
                let target = self
                    .chars
                    .get(self.i)
                    .map(|x| x.0)
                    .unwrap_or(self.src.len())
                    + consumed;
                while self.i < self.chars.len() && self.chars[self.i].0 < target {
                    self.i += 1;
                }
                Ok(Esc::Quoted(s, !lit_part.is_empty()))
            }
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(Esc::Char(c)),
            _ => Err(err_parse("invalid escape sequence", self.from(start))),
        }
    }

    fn octal(&mut self, first: char) -> Result<Esc, String> {
        let mut r = first as u32 - '0' as u32;
        for _ in 1..3 {
            match self.peek() {
                Some(d @ '0'..='7') => {
                    r = r * 8 + (d as u32 - '0' as u32);
                    self.i += 1;
                }
                _ => break,
            }
        }
        Ok(Esc::Char(char::from_u32(r).unwrap_or('\0')))
    }

    fn class(&mut self) -> Result<(), String> {
        // '[' consumed
        let start = self.i - 1;
        let mut out = String::from("[");
        if self.peek() == Some('^') {
            self.i += 1;
            out.push('^');
        }
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return Err(err_parse("missing closing ]", self.from(start)));
            };
            if c == ']' && !first {
                self.i += 1;
                break;
            }
            first = false;
            // POSIX class
            if c == '['
                && self.rest().starts_with("[:")
                && let Some(end) = self.rest()[2..].find(":]")
            {
                let name = &self.rest()[2..2 + end];
                let (neg, nm) = match name.strip_prefix('^') {
                    Some(n) => (true, n),
                    None => (false, name),
                };
                let ok = matches!(
                    nm,
                    "alnum"
                        | "alpha"
                        | "ascii"
                        | "blank"
                        | "cntrl"
                        | "digit"
                        | "graph"
                        | "lower"
                        | "print"
                        | "punct"
                        | "space"
                        | "upper"
                        | "word"
                        | "xdigit"
                );
                if !ok {
                    let whole = format!("[:{name}:]");
                    return Err(err_parse("invalid character class range", &whole));
                }
                out.push_str(&format!("[[:{}{}:]]", if neg { "^" } else { "" }, nm));
                let target = self.chars[self.i].0 + 2 + end + 2;
                while self.i < self.chars.len() && self.chars[self.i].0 < target {
                    self.i += 1;
                }
                continue;
            }
            let rstart = self.i;
            let lo = self.class_char()?;
            let lo = match lo {
                Esc::Char(ch) => ch,
                Esc::Class(cls, neg) => {
                    if neg {
                        out.push_str(&format!("[^{cls}]"));
                    } else {
                        out.push_str(&format!("[{cls}]"));
                    }
                    continue;
                }
                _ => return Err(err_parse("invalid escape sequence", self.from(rstart))),
            };
            // range?
            if self.peek() == Some('-')
                && self.chars.get(self.i + 1).map(|x| x.1) != Some(']')
                && self.i + 1 < self.chars.len()
            {
                self.i += 1;
                let hi = self.class_char()?;
                let Esc::Char(hi) = hi else {
                    return Err(err_parse(
                        "invalid character class range",
                        self.from(rstart),
                    ));
                };
                if hi < lo {
                    return Err(err_parse(
                        "invalid character class range",
                        self.from(rstart),
                    ));
                }
                lit(&mut out, lo);
                out.push('-');
                lit(&mut out, hi);
            } else {
                lit(&mut out, lo);
            }
        }
        out.push(']');
        self.out.push_str(&out);
        Ok(())
    }

    fn class_char(&mut self) -> Result<Esc, String> {
        let c = self.peek().unwrap_or('\0');
        self.i += 1;
        if c == '\\' {
            return self.escape(true);
        }
        Ok(Esc::Char(c))
    }

    fn translate(&mut self) -> Result<(), String> {
        let mut last = Last::Empty;
        let mut depth: Vec<usize> = Vec::new();
        while let Some(c) = self.peek() {
            let at = self.i;
            self.i += 1;
            match c {
                '\\' => {
                    match self.escape(false)? {
                        Esc::Char(ch) => lit(&mut self.out, ch),
                        Esc::Class(cls, neg) => {
                            self.out.push_str(if neg { "[^" } else { "[" });
                            self.out.push_str(&cls);
                            self.out.push(']');
                        }
                        Esc::Raw(r) => self.out.push_str(&r),
                        Esc::Quoted(s, nonempty) => {
                            if !nonempty {
                                continue;
                            }
                            self.out.push_str("(?:");
                            self.out.push_str(&s);
                            self.out.push(')');
                        }
                    }
                    last = Last::Atom;
                }
                '[' => {
                    self.class()?;
                    last = Last::Atom;
                }
                '(' => {
                    if self.peek() == Some('?') {
                        let rest = self.rest();
                        if rest.starts_with("?P<") || rest.starts_with("?<") {
                            let skip = if rest.starts_with("?P<") { 3 } else { 2 };
                            let body = &rest[skip..];
                            let Some(end) = body.find('>') else {
                                return Err(err_parse("invalid named capture", rest));
                            };
                            let name = &body[..end];
                            if name.is_empty()
                                || !name
                                    .chars()
                                    .all(|c| c == '_' || uni::is_letter(c) || uni::is_digit(c))
                            {
                                return Err(err_parse(
                                    "invalid named capture",
                                    &format!("({}>", &rest[..skip + end]),
                                ));
                            }
                            self.names.push(Some(name.as_bytes().to_vec()));
                            let target = self.chars[self.i].0 + skip + end + 1;
                            while self.i < self.chars.len() && self.chars[self.i].0 < target {
                                self.i += 1;
                            }
                            self.out.push('(');
                            depth.push(at);
                            last = Last::Empty;
                            continue;
                        }
                        // flags
                        self.i += 1;
                        let mut on = String::new();
                        let mut off = String::new();
                        let mut neg = false;
                        let mut saw = false;
                        loop {
                            let Some(f) = self.peek() else {
                                return Err(err_parse("missing closing )", self.from(at)));
                            };
                            self.i += 1;
                            match f {
                                'i' | 'm' | 's' | 'U' => {
                                    saw = true;
                                    let tgt = if neg { &mut off } else { &mut on };
                                    if !tgt.contains(f) {
                                        tgt.push(f);
                                    }
                                }
                                '-' => {
                                    if neg {
                                        return Err(err_parse(
                                            "invalid or unsupported Perl syntax",
                                            self.from(at),
                                        ));
                                    }
                                    neg = true;
                                    saw = false;
                                }
                                ':' | ')' => {
                                    if neg && !saw {
                                        return Err(err_parse(
                                            "invalid or unsupported Perl syntax",
                                            self.from(at),
                                        ));
                                    }
                                    let on2: String =
                                        on.chars().filter(|x| !off.contains(*x)).collect();
                                    let mut flags = on2.clone();
                                    if !off.is_empty() {
                                        flags.push('-');
                                        flags.push_str(&off);
                                    }
                                    if f == ':' {
                                        self.out.push_str("(?");
                                        self.out.push_str(&flags);
                                        self.out.push(':');
                                        depth.push(at);
                                        last = Last::Empty;
                                    } else if !flags.is_empty() {
                                        self.out.push_str("(?");
                                        self.out.push_str(&flags);
                                        self.out.push(')');
                                    }
                                    break;
                                }
                                _ => {
                                    return Err(err_parse(
                                        "invalid or unsupported Perl syntax",
                                        self.from(at),
                                    ));
                                }
                            }
                        }
                        continue;
                    }
                    self.names.push(None);
                    self.out.push('(');
                    depth.push(at);
                    last = Last::Empty;
                }
                ')' => {
                    if depth.pop().is_none() {
                        return Err(err_parse("unexpected )", self.src));
                    }
                    self.out.push(')');
                    last = Last::Atom;
                }
                '|' => {
                    self.out.push('|');
                    last = Last::Empty;
                }
                '*' | '+' | '?' => {
                    let mut op = c.to_string();
                    if self.peek() == Some('?') {
                        self.i += 1;
                        op.push('?');
                    }
                    match last {
                        Last::Empty => {
                            return Err(err_parse("missing argument to repetition operator", &op));
                        }
                        Last::Repeat => {
                            return Err(err_parse(
                                "invalid nested repetition operator",
                                self.from(at),
                            ));
                        }
                        Last::Atom => {}
                    }
                    self.out.push_str(&op);
                    last = Last::Repeat;
                }
                '{' => {
                    // counted repetition, if well-formed
                    let rest = self.rest();
                    if let Some((min, max, len)) = parse_repeat(rest) {
                        let mut op = String::new();
                        let lazy = rest[len..].starts_with('?');
                        let total = len + usize::from(lazy);
                        let whole = format!("{{{}", &rest[..total]);
                        if min > 1000 || max.is_some_and(|m| m > 1000 || m < min) {
                            return Err(err_parse("invalid repeat count", &whole));
                        }
                        match last {
                            Last::Empty => {
                                return Err(err_parse(
                                    "missing argument to repetition operator",
                                    &whole,
                                ));
                            }
                            Last::Repeat => {
                                return Err(err_parse(
                                    "invalid nested repetition operator",
                                    &whole,
                                ));
                            }
                            Last::Atom => {}
                        }
                        op.push('{');
                        op.push_str(&rest[..total]);
                        let target = self.chars[self.i].0 + total;
                        while self.i < self.chars.len() && self.chars[self.i].0 < target {
                            self.i += 1;
                        }
                        self.out.push_str(&op);
                        last = Last::Repeat;
                    } else {
                        self.out.push_str("\\{");
                        last = Last::Atom;
                    }
                }
                '^' | '$' | '.' => {
                    self.out.push(c);
                    last = Last::Atom;
                }
                c => {
                    lit(&mut self.out, c);
                    last = Last::Atom;
                }
            }
        }
        if !depth.is_empty() {
            return Err(err_parse("missing closing )", self.src));
        }
        Ok(())
    }
}

enum Esc {
    Char(char),
    /// class body, negated
    Class(String, bool),
    Raw(String),
    Quoted(String, bool),
}

/// Parses "n}" "n,}" "n,m}" (after '{'); returns (min, max, consumed).
fn parse_repeat(s: &str) -> Option<(u64, Option<u64>, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    let num = |i: &mut usize| -> Option<u64> {
        let st = *i;
        let mut v: u64 = 0;
        while *i < b.len() && b[*i].is_ascii_digit() {
            v = v.saturating_mul(10).saturating_add((b[*i] - b'0') as u64);
            *i += 1;
        }
        if *i == st {
            None
        } else {
            Some(v.min(1_000_000))
        }
    };
    let min = num(&mut i)?;
    if i < b.len() && b[i] == b'}' {
        return Some((min, Some(min), i + 1));
    }
    if i < b.len() && b[i] == b',' {
        i += 1;
        if i < b.len() && b[i] == b'}' {
            return Some((min, None, i + 1));
        }
        let max = num(&mut i)?;
        if i < b.len() && b[i] == b'}' {
            return Some((min, Some(max), i + 1));
        }
    }
    None
}

fn build(expr: &[u8]) -> Result<Arc<GoRegex>, String> {
    let Ok(src) = std::str::from_utf8(expr) else {
        return Err(err_parse("invalid UTF-8", &gostr::to_string_lossy(expr)));
    };
    let mut tr = Tr {
        src,
        chars: src.char_indices().collect(),
        i: 0,
        out: String::with_capacity(src.len() * 2),
        names: vec![None],
    };
    tr.translate()?;
    let re = RegexBuilder::new(&tr.out)
        .size_limit(MAX_REGEX_SIZE)
        .dfa_size_limit(MAX_REGEX_SIZE)
        .nest_limit(250)
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
    Ok(Arc::new(GoRegex {
        re,
        expr_empty: expr.is_empty(),
        names: tr.names,
    }))
}

/// regexp.Compile, cached per template.
pub(super) fn compile(c: &mut Ctx<'_>, expr: &[u8]) -> Result<Arc<GoRegex>, String> {
    c.charge_bytes(expr.len() * 16)?;
    if let Ok(map) = c.regex_cache.map.lock()
        && let Some(r) = map.get(expr)
    {
        return r.clone();
    }
    let r = build(expr);
    if let Ok(mut map) = c.regex_cache.map.lock() {
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(expr.to_vec(), r.clone());
    }
    r
}

/// regexp.MustCompile: Go panics; the template reports the panic as an error.
pub(super) fn must_compile(c: &mut Ctx<'_>, expr: &[u8]) -> Result<Arc<GoRegex>, String> {
    compile(c, expr).map_err(|e| {
        let q = gostr::to_string_lossy(expr);
        let quoted = if q.contains('`') {
            printf::quote_str(expr)
        } else {
            format!("`{q}`")
        };
        format!("regexp: Compile({quoted}): {e}")
    })
}

pub(super) fn is_match(c: &mut Ctx<'_>, re: &GoRegex, s: &[u8]) -> Result<bool, String> {
    c.charge_bytes(s.len())?;
    Ok(re.re.is_match(s))
}

fn rune_width_at(s: &[u8], pos: usize) -> usize {
    if pos >= s.len() {
        return 0;
    }
    gostr::decode_rune(&s[pos..]).1.max(1)
}

/// Go's allMatches loop; calls `deliver(start, end)`; n < 0 means all.
fn all_matches(
    c: &mut Ctx<'_>,
    re: &GoRegex,
    s: &[u8],
    n: i64,
    mut deliver: impl FnMut(usize, usize) -> Result<(), String>,
) -> Result<(), String> {
    let n = if n < 0 { s.len() as i64 + 1 } else { n };
    let end = s.len();
    let mut pos = 0usize;
    let mut i = 0i64;
    let mut prev_end: Option<usize> = None;
    while i < n && pos <= end {
        c.charge(1)?;
        let Some(m) = re.re.find_at(s, pos) else {
            break;
        };
        let mut accept = true;
        if m.end() == pos {
            if Some(m.start()) == prev_end {
                accept = false;
            }
            let w = rune_width_at(s, pos);
            pos += if w == 0 { 1 } else { w };
        } else {
            pos = m.end();
        }
        prev_end = Some(m.end());
        if accept {
            deliver(m.start(), m.end())?;
            i += 1;
        }
    }
    Ok(())
}

pub(super) fn find(c: &mut Ctx<'_>, re: &GoRegex, s: &[u8]) -> Result<Vec<u8>, String> {
    c.charge_bytes(s.len())?;
    Ok(re
        .re
        .find(s)
        .map(|m| m.as_bytes().to_vec())
        .unwrap_or_default())
}

pub(super) fn find_all(c: &mut Ctx<'_>, re: &GoRegex, s: &[u8], n: i64) -> FnResult {
    if n == 0 {
        return Ok(Value::nil_list(super::value::ListT::Str));
    }
    let mut out: Vec<Vec<u8>> = Vec::new();
    all_matches(c, re, s, n, |a, b| {
        out.push(s[a..b].to_vec());
        if out.len() > MAX_LIST {
            return Err("result exceeds the list size limit".into());
        }
        Ok(())
    })?;
    if out.is_empty() {
        return Ok(Value::nil_list(super::value::ListT::Str));
    }
    Ok(Value::str_list(out))
}

pub(super) fn split(c: &mut Ctx<'_>, re: &GoRegex, s: &[u8], n: i64) -> FnResult {
    if n == 0 {
        return Ok(Value::nil_list(super::value::ListT::Str));
    }
    if !re.expr_empty && s.is_empty() {
        return Ok(Value::str_list(vec![Vec::new()]));
    }
    let mut matches: Vec<(usize, usize)> = Vec::new();
    all_matches(c, re, s, n, |a, b| {
        matches.push((a, b));
        if matches.len() > MAX_LIST {
            return Err("result exceeds the list size limit".into());
        }
        Ok(())
    })?;
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut beg = 0;
    let mut end = 0;
    for (a, b) in matches {
        if n > 0 && out.len() as i64 == n - 1 {
            break;
        }
        end = a;
        if b != 0 {
            out.push(s[beg..end].to_vec());
        }
        beg = b;
    }
    if end != s.len() {
        out.push(s[beg..].to_vec());
    }
    Ok(Value::str_list(out))
}

fn extract(t: &[u8]) -> Option<(Vec<u8>, i64, usize)> {
    if t.is_empty() {
        return None;
    }
    let mut i = 0;
    let brace = t[0] == b'{';
    if brace {
        i = 1;
    }
    let st = i;
    while i < t.len() {
        let (r, w) = gostr::decode_rune(&t[i..]);
        if !(uni::is_letter(r) || uni::is_digit(r) || r == '_')
            || (r == gostr::RUNE_ERROR && w <= 1)
        {
            break;
        }
        i += w.max(1);
    }
    if i == st {
        return None;
    }
    let name = t[st..i].to_vec();
    if brace {
        if i >= t.len() || t[i] != b'}' {
            return None;
        }
        i += 1;
    }
    let mut num: i64 = 0;
    for &b in &name {
        if !b.is_ascii_digit() || num >= 100_000_000 {
            num = -1;
            break;
        }
        num = num * 10 + (b - b'0') as i64;
    }
    if name[0] == b'0' && name.len() > 1 {
        num = -1;
    }
    Some((name, num, i))
}

fn expand(
    dst: &mut Vec<u8>,
    template: &[u8],
    src: &[u8],
    caps: &regex::bytes::CaptureLocations,
    re: &GoRegex,
) {
    let mut t = template;
    while let Some(p) = t.iter().position(|b| *b == b'$') {
        dst.extend_from_slice(&t[..p]);
        t = &t[p + 1..];
        if t.first() == Some(&b'$') {
            dst.push(b'$');
            t = &t[1..];
            continue;
        }
        let Some((name, num, used)) = extract(t) else {
            dst.push(b'$');
            continue;
        };
        t = &t[used..];
        if num >= 0 {
            if let Some((a, b)) = caps.get(num as usize) {
                dst.extend_from_slice(&src[a..b]);
            }
        } else {
            for (i, n) in re.names.iter().enumerate() {
                if n.as_deref() == Some(&name[..])
                    && let Some((a, b)) = caps.get(i)
                {
                    dst.extend_from_slice(&src[a..b]);
                    break;
                }
            }
        }
    }
    dst.extend_from_slice(t);
}

/// ReplaceAllString / ReplaceAllLiteralString.
pub(super) fn replace_all(
    c: &mut Ctx<'_>,
    re: &GoRegex,
    src: &[u8],
    repl: &[u8],
    literal: bool,
) -> Result<Vec<u8>, String> {
    let mut last_end = 0usize;
    let mut search = 0usize;
    let end = src.len();
    let mut buf: Vec<u8> = Vec::with_capacity(src.len());
    let mut locs = re.re.capture_locations();
    while search <= end {
        c.charge(1)?;
        let Some(m) = re.re.captures_read_at(&mut locs, src, search) else {
            break;
        };
        let (a0, a1) = (m.start(), m.end());
        buf.extend_from_slice(&src[last_end..a0]);
        if a1 > last_end || a0 == 0 {
            if literal {
                buf.extend_from_slice(repl);
            } else {
                expand(&mut buf, repl, src, &locs, re);
            }
        }
        if buf.len() > MAX_STRING {
            return Err("result exceeds the size limit".into());
        }
        last_end = a1;
        let w = rune_width_at(src, search);
        if search + w > a1 {
            search += w;
        } else if search + 1 > a1 {
            search += 1;
        } else {
            search = a1;
        }
    }
    buf.extend_from_slice(&src[last_end.min(src.len())..]);
    if buf.len() > MAX_STRING {
        return Err("result exceeds the size limit".into());
    }
    Ok(buf)
}

/// regexp.QuoteMeta.
pub(super) fn quote_meta(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 2);
    for &b in s {
        if b"\\.+*?()|[]{}^$".contains(&b) {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}
