//! Go `regexp` for templates: Go's FindAll / ReplaceAll / Split / Expand
//! loops over bytes, charged to the template's work budget, on the
//! expressions `regexp` compiles (patterns parsed by the plugin's port of
//! Go's `regexp/syntax`, matched by `regex::bytes`).

use std::sync::Arc;

use super::func::{Ctx, FnResult};
use super::limits::{MAX_LIST, MAX_STRING};
use super::regexp::GoRegex;
use super::value::{ListT, Value};
use super::{gostr, strconv, unicode as uni};

/// regexp.Compile, cached per template.
pub(super) fn compile(c: &mut Ctx<'_>, expr: &[u8]) -> Result<Arc<GoRegex>, String> {
    c.charge_bytes(expr.len() * 16)?;
    c.regex_cache.compile(expr)
}

/// regexp.MustCompile: Go panics; the template reports the panic as an error.
pub(super) fn must_compile(c: &mut Ctx<'_>, expr: &[u8]) -> Result<Arc<GoRegex>, String> {
    compile(c, expr).map_err(|e| {
        let q = gostr::to_string_lossy(expr);
        let quoted = if q.contains('`') {
            strconv::quote_str(expr)
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
        return Ok(Value::nil_list(ListT::Str));
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
        return Ok(Value::nil_list(ListT::Str));
    }
    Ok(Value::str_list(out))
}

pub(super) fn split(c: &mut Ctx<'_>, re: &GoRegex, s: &[u8], n: i64) -> FnResult {
    if n == 0 {
        return Ok(Value::nil_list(ListT::Str));
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
    caps: &[Option<(usize, usize)>],
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
            if let Some(Some((a, b))) = caps.get(num as usize) {
                dst.extend_from_slice(&src[*a..*b]);
            }
        } else {
            for (i, n) in re.names.iter().enumerate() {
                if n.as_deref() == Some(&name[..])
                    && let Some(Some((a, b))) = caps.get(i)
                {
                    dst.extend_from_slice(&src[*a..*b]);
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
                expand(&mut buf, repl, src, &re.go_slots(&locs), re);
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
