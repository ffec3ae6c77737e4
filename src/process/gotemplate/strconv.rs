//! Go's strconv: number parsing, quoting and unquoting, float formatting
//! (the parts templates, sprig and fmt use).

use super::gostr::{self, RUNE_ERROR, decode_rune, push_rune};
use super::unicode as uni;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NumErr {
    Syntax,
    Range,
}

fn lower(c: u8) -> u8 {
    c | 0x20
}

/// strconv's underscoreOK.
pub(super) fn underscore_ok(s: &[u8]) -> bool {
    let mut saw = b'^';
    let mut i = 0;
    let mut s = s;
    if !s.is_empty() && (s[0] == b'-' || s[0] == b'+') {
        s = &s[1..];
    }
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(lower(s[1]), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = lower(s[1]) == b'x';
    }
    while i < s.len() {
        let c = s[i];
        if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&lower(c))) {
            saw = b'0';
            i += 1;
            continue;
        }
        if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
            i += 1;
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
        i += 1;
    }
    saw != b'_'
}

/// strconv.ParseUint(s, base, 64); base 0 means Go syntax prefixes.
/// On range errors returns (max, Range).
pub(super) fn parse_uint(s: &[u8], base: u32) -> Result<u64, (u64, NumErr)> {
    if s.is_empty() {
        return Err((0, NumErr::Syntax));
    }
    let base0 = base == 0;
    let s0 = s;
    let mut s = s;
    let mut base = base;
    if base == 0 {
        base = 10;
        if s[0] == b'0' {
            if s.len() >= 3 && lower(s[1]) == b'b' {
                base = 2;
                s = &s[2..];
            } else if s.len() >= 3 && lower(s[1]) == b'o' {
                base = 8;
                s = &s[2..];
            } else if s.len() >= 3 && lower(s[1]) == b'x' {
                base = 16;
                s = &s[2..];
            } else {
                base = 8;
                s = &s[1..];
            }
        }
    }
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in s {
        let d = if c == b'_' && base0 {
            underscores = true;
            continue;
        } else if c.is_ascii_digit() {
            c - b'0'
        } else if lower(c).is_ascii_lowercase() {
            lower(c) - b'a' + 10
        } else {
            return Err((0, NumErr::Syntax));
        };
        if d as u32 >= base {
            return Err((0, NumErr::Syntax));
        }
        match n
            .checked_mul(base as u64)
            .and_then(|v| v.checked_add(d as u64))
        {
            Some(v) => n = v,
            None => return Err((u64::MAX, NumErr::Range)),
        }
    }
    if underscores && !underscore_ok(s0) {
        return Err((0, NumErr::Syntax));
    }
    Ok(n)
}

/// strconv.ParseInt(s, base, 64). Range errors carry the clamped value.
pub(super) fn parse_int(s: &[u8], base: u32) -> Result<i64, (i64, NumErr)> {
    if s.is_empty() {
        return Err((0, NumErr::Syntax));
    }
    let mut neg = false;
    let mut rest = s;
    if s[0] == b'+' {
        rest = &s[1..];
    } else if s[0] == b'-' {
        neg = true;
        rest = &s[1..];
    }
    let un = match parse_uint(rest, base) {
        Ok(v) => v,
        Err((_, NumErr::Syntax)) => return Err((0, NumErr::Syntax)),
        Err((v, NumErr::Range)) => v,
    };
    let cutoff: u64 = 1 << 63;
    if !neg && un >= cutoff {
        return Err((i64::MAX, NumErr::Range));
    }
    if neg && un > cutoff {
        return Err((i64::MIN, NumErr::Range));
    }
    // recheck a range error from parse_uint (un == u64::MAX handled above)
    let n = un as i64;
    Ok(if neg { n.wrapping_neg() } else { n })
}

/// strconv.Atoi.
pub(super) fn atoi(s: &[u8]) -> Result<i64, (i64, NumErr)> {
    if !s.is_empty() && s.len() < 19 {
        let mut t = s;
        if s[0] == b'-' || s[0] == b'+' {
            t = &s[1..];
            if t.is_empty() {
                return Err((0, NumErr::Syntax));
            }
        }
        let mut n: i64 = 0;
        for &c in t {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return Err((0, NumErr::Syntax));
            }
            n = n * 10 + d as i64;
        }
        if s[0] == b'-' {
            n = -n;
        }
        return Ok(n);
    }
    parse_int(s, 10)
}

fn special(s: &[u8]) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    let (sign, rest) = match s[0] {
        b'+' => (1.0, &s[1..]),
        b'-' => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    let l: Vec<u8> = rest.iter().map(|c| c.to_ascii_lowercase()).collect();
    if l == b"infinity" || l == b"inf" {
        return Some(sign * f64::INFINITY);
    }
    if l == b"nan" && s.len() == 3 {
        return Some(f64::NAN);
    }
    None
}

/// strconv.ParseFloat(s, 64).
pub(super) fn parse_float(s: &[u8]) -> Result<f64, (f64, NumErr)> {
    if let Some(v) = special(s) {
        return Ok(v);
    }
    let n = s.len();
    let mut i = 0;
    let mut underscores = false;
    let mut neg = false;
    if i < n && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let mut hex = false;
    if i + 2 < n && s[i] == b'0' && lower(s[i + 1]) == b'x' {
        hex = true;
        i += 2;
    }
    let mant_start = i;
    let mut sawdot = false;
    let mut sawdigits = false;
    while i < n {
        let c = s[i];
        if c == b'_' {
            underscores = true;
        } else if c == b'.' {
            if sawdot {
                break;
            }
            sawdot = true;
        } else if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&lower(c))) {
            sawdigits = true;
        } else {
            break;
        }
        i += 1;
    }
    if !sawdigits {
        return Err((0.0, NumErr::Syntax));
    }
    let mant_end = i;
    let exp_char = if hex { b'p' } else { b'e' };
    let mut exp: i64 = 0;
    if i < n && lower(s[i]) == exp_char {
        i += 1;
        if i >= n {
            return Err((0.0, NumErr::Syntax));
        }
        let mut esign = 1;
        if s[i] == b'+' {
            i += 1;
        } else if s[i] == b'-' {
            i += 1;
            esign = -1;
        }
        if i >= n || !s[i].is_ascii_digit() {
            return Err((0.0, NumErr::Syntax));
        }
        let mut e: i64 = 0;
        while i < n && (s[i].is_ascii_digit() || s[i] == b'_') {
            if s[i] == b'_' {
                underscores = true;
            } else if e < 10000 {
                e = e * 10 + (s[i] - b'0') as i64;
            }
            i += 1;
        }
        exp = e * esign;
    } else if hex {
        return Err((0.0, NumErr::Syntax));
    }
    if underscores && !underscore_ok(&s[..i]) {
        return Err((0.0, NumErr::Syntax));
    }
    if i != n {
        return Err((0.0, NumErr::Syntax));
    }
    let mant: Vec<u8> = s[mant_start..mant_end]
        .iter()
        .copied()
        .filter(|c| *c != b'_')
        .collect();
    let v = if hex {
        // mantissa hex digits with optional dot
        let mut m: f64 = 0.0;
        let mut frac_digits: i64 = 0;
        let mut seen_dot = false;
        for &c in &mant {
            if c == b'.' {
                seen_dot = true;
                continue;
            }
            let d = if c.is_ascii_digit() {
                c - b'0'
            } else {
                lower(c) - b'a' + 10
            };
            m = m * 16.0 + d as f64;
            if seen_dot {
                frac_digits += 1;
            }
        }
        let e2 = exp - 4 * frac_digits;
        let e2 = e2.clamp(-4000, 4000) as i32;
        m * 2f64.powi(e2)
    } else {
        let mut txt = String::with_capacity(mant.len() + 8);
        for &c in &mant {
            txt.push(c as char);
        }
        if txt.starts_with('.') {
            txt.insert(0, '0');
        }
        if txt.ends_with('.') {
            txt.push('0');
        }
        txt.push('e');
        txt.push_str(&exp.to_string());
        txt.parse::<f64>().unwrap_or(0.0)
    };
    let v = if neg { -v } else { v };
    if v.is_infinite() {
        return Err((v, NumErr::Range));
    }
    Ok(v)
}

/// strconv.UnquoteChar: decodes the first character or escape of `s`.
/// Returns (value, multibyte, tail) where value is a rune (or a raw byte
/// when !multibyte and from \x or octal escapes).
pub(super) fn unquote_char(s: &[u8], quote: u8) -> Result<(u32, bool, &[u8]), ()> {
    let Some(&c) = s.first() else {
        return Err(());
    };
    if c == quote && (quote == b'\'' || quote == b'"') {
        return Err(());
    }
    if c >= 0x80 {
        let (r, w) = decode_rune(s);
        return Ok((r as u32, true, &s[w.max(1)..]));
    }
    if c != b'\\' {
        return Ok((c as u32, false, &s[1..]));
    }
    if s.len() <= 1 {
        return Err(());
    }
    let c = s[1];
    let mut s = &s[2..];
    let value: u32;
    let mut multibyte = false;
    match c {
        b'a' => value = 7,
        b'b' => value = 8,
        b'f' => value = 12,
        b'n' => value = 10,
        b'r' => value = 13,
        b't' => value = 9,
        b'v' => value = 11,
        b'x' | b'u' | b'U' => {
            let n = match c {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            if s.len() < n {
                return Err(());
            }
            let mut v: u32 = 0;
            for &d in &s[..n] {
                let x = match d {
                    b'0'..=b'9' => d - b'0',
                    b'a'..=b'f' => d - b'a' + 10,
                    b'A'..=b'F' => d - b'A' + 10,
                    _ => return Err(()),
                };
                v = (v << 4) | x as u32;
            }
            s = &s[n..];
            if c == b'x' {
                value = v;
            } else {
                if v > 0x10FFFF || (0xD800..=0xDFFF).contains(&v) {
                    return Err(());
                }
                value = v;
                multibyte = true;
            }
        }
        b'0'..=b'7' => {
            let mut v = (c - b'0') as u32;
            if s.len() < 2 {
                return Err(());
            }
            for &d in &s[..2] {
                let x = d.wrapping_sub(b'0');
                if x > 7 {
                    return Err(());
                }
                v = (v << 3) | x as u32;
            }
            s = &s[2..];
            if v > 255 {
                return Err(());
            }
            value = v;
        }
        b'\\' => value = b'\\' as u32,
        b'\'' | b'"' => {
            if c != quote {
                return Err(());
            }
            value = c as u32;
        }
        _ => return Err(()),
    }
    Ok((value, multibyte, s))
}

/// strconv.Unquote for "..." and `...` literals (the lexer guarantees the
/// delimiters). Returns the bytes.
pub(super) fn unquote(lit: &str) -> Result<Vec<u8>, ()> {
    let b = lit.as_bytes();
    if b.len() < 2 {
        return Err(());
    }
    let quote = b[0];
    if quote != b[b.len() - 1] {
        return Err(());
    }
    let inner = &b[1..b.len() - 1];
    if quote == b'`' {
        if inner.contains(&b'`') {
            return Err(());
        }
        return Ok(inner.iter().copied().filter(|c| *c != b'\r').collect());
    }
    if quote != b'"' && quote != b'\'' {
        return Err(());
    }
    if inner.contains(&b'\n') {
        return Err(());
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut s = inner;
    while !s.is_empty() {
        let (v, mb, tail) = unquote_char(s, quote)?;
        s = tail;
        if v < 0x80 || !mb {
            if mb || v < 0x100 {
                out.push(v as u8);
            } else {
                return Err(());
            }
        } else {
            let c = char::from_u32(v).ok_or(())?;
            push_rune(&mut out, c);
        }
        if quote == b'\'' {
            break;
        }
    }
    if quote == b'\'' && !s.is_empty() {
        return Err(());
    }
    Ok(out)
}

// ---------------- quoting ----------------

/// Hex digits as strconv's escapes and fmt's %x/%X write them.
pub(super) const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";
pub(super) const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

fn append_escaped_rune(buf: &mut Vec<u8>, r: char, quote: u8, ascii_only: bool) {
    if r as u32 == quote as u32 || r == '\\' {
        buf.push(b'\\');
        push_rune(buf, r);
        return;
    }
    if ascii_only {
        if r.is_ascii() && uni::is_print(r) {
            buf.push(r as u8);
            return;
        }
    } else if uni::is_print(r) {
        push_rune(buf, r);
        return;
    }
    match r {
        '\u{7}' => buf.extend_from_slice(b"\\a"),
        '\u{8}' => buf.extend_from_slice(b"\\b"),
        '\u{c}' => buf.extend_from_slice(b"\\f"),
        '\n' => buf.extend_from_slice(b"\\n"),
        '\r' => buf.extend_from_slice(b"\\r"),
        '\t' => buf.extend_from_slice(b"\\t"),
        '\u{b}' => buf.extend_from_slice(b"\\v"),
        _ => {
            let u = r as u32;
            if u < 0x20 || u == 0x7f {
                buf.extend_from_slice(b"\\x");
                buf.push(LOWER_HEX[(u >> 4) as usize & 0xF]);
                buf.push(LOWER_HEX[u as usize & 0xF]);
            } else if u < 0x10000 {
                buf.extend_from_slice(b"\\u");
                for s in [12, 8, 4, 0] {
                    buf.push(LOWER_HEX[(u >> s) as usize & 0xF]);
                }
            } else {
                buf.extend_from_slice(b"\\U");
                for s in [28, 24, 20, 16, 12, 8, 4, 0] {
                    buf.push(LOWER_HEX[(u >> s) as usize & 0xF]);
                }
            }
        }
    }
}

/// strconv.Quote / QuoteToASCII.
pub(super) fn quote_with(s: &[u8], quote: u8, ascii_only: bool) -> Vec<u8> {
    let mut buf = Vec::with_capacity(s.len() + 2);
    buf.push(quote);
    let mut i = 0;
    while i < s.len() {
        let (r, w) = decode_rune(&s[i..]);
        if w == 1 && r == RUNE_ERROR {
            buf.extend_from_slice(b"\\x");
            buf.push(LOWER_HEX[(s[i] >> 4) as usize]);
            buf.push(LOWER_HEX[(s[i] & 0xF) as usize]);
            i += 1;
            continue;
        }
        append_escaped_rune(&mut buf, r, quote, ascii_only);
        i += w.max(1);
    }
    buf.push(quote);
    buf
}

pub(super) fn quote_bytes(s: &[u8]) -> Vec<u8> {
    quote_with(s, b'"', false)
}

/// strconv.Quote as a Rust string (for error messages).
pub(super) fn quote_str(s: &[u8]) -> String {
    gostr::to_string_lossy(&quote_bytes(s))
}

/// strconv.QuoteRune / QuoteRuneToASCII.
pub(super) fn quote_rune(r: u32, ascii_only: bool) -> Vec<u8> {
    let c = char::from_u32(r).unwrap_or(RUNE_ERROR);
    let mut buf = vec![b'\''];
    append_escaped_rune(&mut buf, c, b'\'', ascii_only);
    buf.push(b'\'');
    buf
}

/// strconv.CanBackquote.
pub(super) fn can_backquote(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        let (r, w) = decode_rune(&s[i..]);
        if w == 1 && r == RUNE_ERROR {
            return false;
        }
        if r == '\u{FEFF}' {
            return false;
        }
        if w == 1 && ((r < ' ' && r != '\t') || r == '`' || r == '\u{7F}') {
            return false;
        }
        i += w.max(1);
    }
    true
}

// ---------------- float formatting (strconv.FormatFloat) ----------------

struct Digits {
    d: Vec<u8>,
    dp: i32,
}

fn parse_exp_repr(s: &str) -> Digits {
    // s like "1.2345e-5" or "0e0" (no sign)
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(|c| *c != b'.').collect();
    while d.len() > 1 && d.last() == Some(&b'0') {
        d.pop();
    }
    if d == b"0" {
        return Digits {
            d: Vec::new(),
            dp: 0,
        };
    }
    Digits { d, dp: exp + 1 }
}

fn digits_shortest(f: f64) -> Digits {
    parse_exp_repr(&format!("{:e}", f.abs()))
}

/// Past this many significant digits a float64's decimal expansion is
/// exact (at most 767), so more are zeros; Rust's formatter takes no
/// precision over 65,535.
const MAX_EXACT_DIGITS: usize = 800;

fn digits_prec(f: f64, n: usize) -> Digits {
    let n = n.clamp(1, MAX_EXACT_DIGITS);
    parse_exp_repr(&format!("{:.*e}", n - 1, f.abs()))
}

fn fmt_e(dst: &mut Vec<u8>, neg: bool, d: &Digits, prec: i64, ch: u8) {
    if neg {
        dst.push(b'-');
    }
    dst.push(if d.d.is_empty() { b'0' } else { d.d[0] });
    if prec > 0 {
        dst.push(b'.');
        let mut i = 1usize;
        let m = d.d.len().min(prec as usize + 1);
        if i < m {
            dst.extend_from_slice(&d.d[i..m]);
            i = m;
        }
        while i as i64 <= prec {
            dst.push(b'0');
            i += 1;
        }
    }
    dst.push(ch);
    let mut exp = d.dp - 1;
    if d.d.is_empty() {
        exp = 0;
    }
    if exp < 0 {
        dst.push(b'-');
        exp = -exp;
    } else {
        dst.push(b'+');
    }
    if exp < 10 {
        dst.push(b'0');
        dst.push(b'0' + exp as u8);
    } else {
        dst.extend_from_slice(exp.to_string().as_bytes());
    }
}

fn fmt_f(dst: &mut Vec<u8>, neg: bool, d: &Digits, prec: i64) {
    if neg {
        dst.push(b'-');
    }
    if d.dp > 0 {
        let m = d.d.len().min(d.dp as usize);
        dst.extend_from_slice(&d.d[..m]);
        for _ in m..d.dp as usize {
            dst.push(b'0');
        }
    } else {
        dst.push(b'0');
    }
    if prec > 0 {
        dst.push(b'.');
        for i in 1..=prec {
            let j = d.dp as i64 + i - 1;
            let ch = if j >= 0 && (j as usize) < d.d.len() {
                d.d[j as usize]
            } else {
                b'0'
            };
            dst.push(ch);
        }
    }
}

/// strconv.FormatFloat(f, fmt, prec, 64) for fmt in e E f F g G (prec < 0: shortest).
pub(super) fn format_float(f: f64, fmt: u8, prec: i64) -> Vec<u8> {
    let mut dst = Vec::new();
    if f.is_nan() {
        return b"NaN".to_vec();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            b"+Inf".to_vec()
        } else {
            b"-Inf".to_vec()
        };
    }
    let neg = f.is_sign_negative();
    let shortest = prec < 0;
    let fmt = if fmt == b'F' { b'f' } else { fmt };
    if fmt == b'x' || fmt == b'X' || fmt == b'b' {
        let bits = f.to_bits();
        let mut exp = ((bits >> 52) & 0x7FF) as i64;
        let mut mant = bits & ((1u64 << 52) - 1);
        if exp == 0 {
            exp += 1;
        } else {
            mant |= 1u64 << 52;
        }
        exp -= 1023;
        if fmt == b'b' {
            if neg {
                dst.push(b'-');
            }
            dst.extend_from_slice(mant.to_string().as_bytes());
            dst.push(b'p');
            let e = exp - 52;
            if e >= 0 {
                dst.push(b'+');
            }
            dst.extend_from_slice(e.to_string().as_bytes());
            return dst;
        }
        return fmt_x(dst, prec, fmt, neg, mant, exp);
    }
    match fmt {
        b'e' | b'E' => {
            let (d, p) = if shortest {
                let d = digits_shortest(f);
                let p = (d.d.len() as i64 - 1).max(0);
                (d, p)
            } else {
                (digits_prec(f, (prec + 1) as usize), prec)
            };
            fmt_e(&mut dst, neg, &d, p, fmt);
        }
        b'f' => {
            if shortest {
                let d = digits_shortest(f);
                let p = (d.d.len() as i64 - d.dp as i64).max(0);
                fmt_f(&mut dst, neg, &d, p);
            } else {
                // Every digit after the point is exact within 1,100
                // places (a float64 has at most 1,074); past them, zeros.
                let wanted = prec.clamp(0, 1_000_000) as usize;
                let exact = wanted.min(1_100);
                let s = format!("{:.*}", exact, f.abs());
                if neg {
                    dst.push(b'-');
                }
                dst.extend_from_slice(s.as_bytes());
                dst.resize(dst.len() + (wanted - exact), b'0');
            }
        }
        _ => {
            // g / G
            let (d, mut p) = if shortest {
                let d = digits_shortest(f);
                let p = d.d.len() as i64;
                (d, p)
            } else {
                let p = if prec == 0 { 1 } else { prec };
                (digits_prec(f, p as usize), p)
            };
            if f == 0.0 && !shortest {
                // decimal of zero has nd == 0
            }
            let mut eprec = p;
            let nd = d.d.len() as i64;
            if eprec > nd && nd >= d.dp as i64 {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = d.dp as i64 - 1;
            let ech = if fmt == b'G' { b'E' } else { b'e' };
            if exp < -4 || exp >= eprec {
                if p > nd {
                    p = nd;
                }
                fmt_e(&mut dst, neg, &d, p - 1, ech);
            } else {
                if p > d.dp as i64 {
                    p = nd;
                }
                fmt_f(&mut dst, neg, &d, (p - d.dp as i64).max(0));
            }
        }
    }
    dst
}

fn fmt_x(mut dst: Vec<u8>, prec: i64, fmt: u8, neg: bool, mant: u64, exp: i64) -> Vec<u8> {
    let mut mant = mant;
    let mut exp = if mant == 0 { 0 } else { exp };
    mant <<= 60 - 52;
    while mant != 0 && mant & (1 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    if (0..15).contains(&prec) {
        let shift = (prec * 4) as u32;
        let extra = (mant << shift) & ((1u64 << 60) - 1);
        mant >>= 60 - shift;
        if extra | (mant & 1) > 1 << 59 {
            mant += 1;
        }
        mant <<= 60 - shift;
        if mant & (1 << 61) != 0 {
            mant >>= 1;
            exp += 1;
        }
    }
    let hex = if fmt == b'X' { UPPER_HEX } else { LOWER_HEX };
    if neg {
        dst.push(b'-');
    }
    dst.push(b'0');
    dst.push(fmt);
    dst.push(b'0' + ((mant >> 60) & 1) as u8);
    mant <<= 4;
    if prec < 0 && mant != 0 {
        dst.push(b'.');
        while mant != 0 {
            dst.push(hex[((mant >> 60) & 15) as usize]);
            mant <<= 4;
        }
    } else if prec > 0 {
        dst.push(b'.');
        for _ in 0..prec.min(1000) {
            dst.push(hex[((mant >> 60) & 15) as usize]);
            mant <<= 4;
        }
    }
    dst.push(if fmt == b'X' { b'P' } else { b'p' });
    if exp < 0 {
        dst.push(b'-');
        exp = -exp;
    } else {
        dst.push(b'+');
    }
    if exp < 100 {
        dst.push(b'0' + (exp / 10) as u8);
        dst.push(b'0' + (exp % 10) as u8);
    } else {
        dst.extend_from_slice(exp.to_string().as_bytes());
    }
    dst
}
