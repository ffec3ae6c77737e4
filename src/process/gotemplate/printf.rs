//! A port of Go's fmt (Sprint, Sprintln, Sprintf) and the strconv pieces it
//! needs (quoting, float formatting), over the template value model.

use super::gostr::{self, RUNE_ERROR, decode_rune, push_rune};
use super::unicode as uni;
use super::value::{IntT, ListT, UintT, Value};
use super::{MAX_STRING, MAX_VALUE_DEPTH};

const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";
const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

// ---------------- strconv quoting ----------------

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
fn can_backquote(s: &[u8]) -> bool {
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

/// "U+0029 ')'" (fmt's %#U), used in lexer messages.
pub(super) fn format_sharp_u(u: u32) -> String {
    let mut s = format!("U+{u:04X}");
    if let Some(c) = char::from_u32(u)
        && uni::is_print(c)
    {
        s.push_str(" '");
        s.push(c);
        s.push('\'');
    }
    s
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

fn digits_prec(f: f64, n: usize) -> Digits {
    let n = n.clamp(1, 1_000_000);
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
                let s = format!("{:.*}", prec.min(1_000_000) as usize, f.abs());
                if neg {
                    dst.push(b'-');
                }
                dst.extend_from_slice(s.as_bytes());
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

// ---------------- fmt state ----------------

#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
    wid: usize,
    wid_present: bool,
    prec: usize,
    prec_present: bool,
}

/// Error: the formatted output grew past the size bound.
#[derive(Debug)]
pub(super) struct TooLong;

pub(super) struct Printer {
    pub buf: Vec<u8>,
    f: Flags,
    limit: usize,
    pub overflow: bool,
}

fn tiny(f: f64) -> bool {
    f == 0.0
}

impl Printer {
    pub(super) fn new() -> Printer {
        Printer {
            buf: Vec::new(),
            f: Flags::default(),
            limit: MAX_STRING,
            overflow: false,
        }
    }

    fn write(&mut self, b: &[u8]) {
        if self.overflow {
            return;
        }
        if self.buf.len() + b.len() > self.limit {
            self.overflow = true;
            return;
        }
        self.buf.extend_from_slice(b);
    }

    fn write_byte(&mut self, b: u8) {
        self.write(&[b]);
    }

    fn write_padding(&mut self, n: i64) {
        if n <= 0 || self.overflow {
            return;
        }
        let n = n as usize;
        if self.buf.len() + n > self.limit {
            self.overflow = true;
            return;
        }
        let pad = if self.f.zero && !self.f.minus {
            b'0'
        } else {
            b' '
        };
        self.buf.resize(self.buf.len() + n, pad);
    }

    fn pad(&mut self, b: &[u8]) {
        if !self.f.wid_present || self.f.wid == 0 {
            self.write(b);
            return;
        }
        let width = self.f.wid as i64 - gostr::rune_count(b) as i64;
        if !self.f.minus {
            self.write_padding(width);
            self.write(b);
        } else {
            self.write(b);
            self.write_padding(width);
        }
    }

    fn truncate<'b>(&self, s: &'b [u8]) -> &'b [u8] {
        if self.f.prec_present {
            let mut n = self.f.prec;
            for (at, _, _) in gostr::runes(s) {
                if n == 0 {
                    return &s[..at];
                }
                n -= 1;
            }
        }
        s
    }

    fn fmt_s(&mut self, s: &[u8]) {
        let s = self.truncate(s);
        self.pad(s);
    }

    fn fmt_sx(&mut self, s: &[u8], digits: &[u8; 16]) {
        let mut length = s.len();
        if self.f.prec_present && self.f.prec < length {
            length = self.f.prec;
        }
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if self.f.wid_present {
                self.write_padding(self.f.wid as i64);
            }
            return;
        }
        if self.f.wid_present && self.f.wid > width && !self.f.minus {
            self.write_padding((self.f.wid - width) as i64);
        }
        let x = if digits[10] == b'a' { b'x' } else { b'X' };
        let mut out = Vec::with_capacity(width);
        if self.f.sharp {
            out.push(b'0');
            out.push(x);
        }
        for (i, &c) in s[..length].iter().enumerate() {
            if self.f.space && i > 0 {
                out.push(b' ');
                if self.f.sharp {
                    out.push(b'0');
                    out.push(x);
                }
            }
            out.push(digits[(c >> 4) as usize]);
            out.push(digits[(c & 0xF) as usize]);
        }
        self.write(&out);
        if self.f.wid_present && self.f.wid > width && self.f.minus {
            self.write_padding((self.f.wid - width) as i64);
        }
    }

    fn fmt_q(&mut self, s: &[u8]) {
        let s = self.truncate(s).to_vec();
        if self.f.sharp && can_backquote(&s) {
            let mut b = vec![b'`'];
            b.extend_from_slice(&s);
            b.push(b'`');
            self.pad(&b);
            return;
        }
        let q = quote_with(&s, b'"', self.f.plus);
        self.pad(&q);
    }

    fn fmt_string(&mut self, s: &[u8], verb: char) {
        match verb {
            'v' => {
                if self.f.sharp_v {
                    self.fmt_q(s)
                } else {
                    self.fmt_s(s)
                }
            }
            's' => self.fmt_s(s),
            'x' => self.fmt_sx(s, LOWER_HEX),
            'X' => self.fmt_sx(s, UPPER_HEX),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(verb, &Value::Str(std::rc::Rc::from(s))),
        }
    }

    fn fmt_bool(&mut self, b: bool, verb: char) {
        match verb {
            't' | 'v' => self.pad(if b { b"true" } else { b"false" }),
            _ => self.bad_verb(verb, &Value::Bool(b)),
        }
    }

    #[allow(clippy::collapsible_match)]
    fn fmt_integer_base(&mut self, u: u64, base: u64, signed: bool, verb: char, upper: bool) {
        let negative = signed && (u as i64) < 0;
        let mut u = if negative {
            (u as i64).wrapping_neg() as u64
        } else {
            u
        };
        let digits = if upper { UPPER_HEX } else { LOWER_HEX };
        let mut prec: i64 = 0;
        if self.f.prec_present {
            prec = self.f.prec as i64;
            if prec == 0 && u == 0 {
                let old = self.f.zero;
                self.f.zero = false;
                self.write_padding(self.f.wid as i64);
                self.f.zero = old;
                return;
            }
        } else if self.f.zero && !self.f.minus && self.f.wid_present {
            prec = self.f.wid as i64;
            if negative || self.f.plus || self.f.space {
                prec -= 1;
            }
        }
        let mut buf: Vec<u8> = Vec::with_capacity(24);
        if u == 0 {
            buf.push(b'0');
        }
        while u > 0 {
            buf.push(digits[(u % base) as usize]);
            u /= base;
        }
        // buf is reversed
        while (buf.len() as i64) < prec {
            buf.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => {
                    buf.push(b'b');
                    buf.push(b'0');
                }
                8 => {
                    if buf.last() != Some(&b'0') {
                        buf.push(b'0');
                    }
                }
                16 => {
                    buf.push(if upper { b'X' } else { b'x' });
                    buf.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            buf.push(b'o');
            buf.push(b'0');
        }
        if negative {
            buf.push(b'-');
        } else if self.f.plus {
            buf.push(b'+');
        } else if self.f.space {
            buf.push(b' ');
        }
        buf.reverse();
        let old = self.f.zero;
        self.f.zero = false;
        self.pad(&buf);
        self.f.zero = old;
    }

    fn fmt_integer(&mut self, v: &Value, u: u64, signed: bool, verb: char) {
        match verb {
            'v' => {
                if self.f.sharp_v && !signed {
                    let old = self.f.sharp;
                    self.f.sharp = true;
                    self.fmt_integer_base(u, 16, false, 'v', false);
                    self.f.sharp = old;
                } else {
                    self.fmt_integer_base(u, 10, signed, verb, false)
                }
            }
            'd' => self.fmt_integer_base(u, 10, signed, verb, false),
            'b' => self.fmt_integer_base(u, 2, signed, verb, false),
            'o' | 'O' => self.fmt_integer_base(u, 8, signed, verb, false),
            'x' => self.fmt_integer_base(u, 16, signed, verb, false),
            'X' => self.fmt_integer_base(u, 16, signed, verb, true),
            'c' => {
                let r = if u > 0x10FFFF {
                    RUNE_ERROR
                } else {
                    char::from_u32(u as u32).unwrap_or(RUNE_ERROR)
                };
                let mut b = Vec::new();
                push_rune(&mut b, r);
                self.pad(&b);
            }
            'q' => {
                let r = if u > 0x10FFFF { 0xFFFD } else { u as u32 };
                let q = quote_rune(r, self.f.plus);
                self.pad(&q);
            }
            'U' => self.fmt_unicode(u),
            _ => self.bad_verb(verb, v),
        }
    }

    fn fmt_unicode(&mut self, u: u64) {
        let mut prec = 4usize;
        if self.f.prec_present && self.f.prec > 4 {
            prec = self.f.prec.min(64);
        }
        let mut s = format!("{u:X}");
        while s.len() < prec {
            s.insert(0, '0');
        }
        let mut b = b"U+".to_vec();
        b.extend_from_slice(s.as_bytes());
        if self.f.sharp
            && u <= 0x10FFFF
            && let Some(c) = char::from_u32(u as u32)
            && uni::is_print(c)
        {
            b.extend_from_slice(b" '");
            push_rune(&mut b, c);
            b.push(b'\'');
        }
        let old = self.f.zero;
        self.f.zero = false;
        self.pad(&b);
        self.f.zero = old;
    }

    fn fmt_float_verb(&mut self, v: f64, verb: char, prec: i64) {
        let prec = if self.f.prec_present {
            self.f.prec as i64
        } else {
            prec
        };
        let mut num = vec![b'+'];
        num.extend_from_slice(&format_float(v, verb as u8, prec));
        if num[1] == b'-' || num[1] == b'+' {
            num.remove(0);
        }
        if self.f.space && num[0] == b'+' && !self.f.plus {
            num[0] = b' ';
        }
        if num[1] == b'I' || num[1] == b'N' {
            let old = self.f.zero;
            self.f.zero = false;
            if num[1] == b'N' && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            self.pad(&num);
            self.f.zero = old;
            return;
        }
        if self.f.sharp && verb != 'b' {
            let mut digits: i64 = 0;
            if matches!(verb, 'v' | 'g' | 'G' | 'x') {
                digits = prec;
                if digits == -1 {
                    digits = 6;
                }
            }
            let mut tail: Vec<u8> = Vec::new();
            let mut has_dot = false;
            let mut saw_nonzero = false;
            let mut i = 1;
            while i < num.len() {
                match num[i] {
                    b'.' => has_dot = true,
                    b'p' | b'P' | b'e' | b'E' => {
                        tail.extend_from_slice(&num[i..]);
                        num.truncate(i);
                        break;
                    }
                    c => {
                        if c != b'0' {
                            saw_nonzero = true;
                        }
                        if saw_nonzero {
                            digits -= 1;
                        }
                    }
                }
                i += 1;
            }
            if !has_dot {
                if num.len() == 2 && num[1] == b'0' {
                    digits -= 1;
                }
                num.push(b'.');
            }
            while digits > 0 {
                num.push(b'0');
                digits -= 1;
            }
            num.extend_from_slice(&tail);
        }
        if self.f.plus || num[0] != b'+' {
            if self.f.zero && !self.f.minus && self.f.wid_present && self.f.wid > num.len() {
                self.write_byte(num[0]);
                self.write_padding((self.f.wid - num.len()) as i64);
                self.write(&num[1..]);
                return;
            }
            self.pad(&num);
            return;
        }
        self.pad(&num[1..]);
    }

    fn fmt_float(&mut self, v: f64, verb: char) {
        match verb {
            'v' => self.fmt_float_verb(v, 'g', -1),
            'g' | 'G' | 'b' | 'x' | 'X' => self.fmt_float_verb(v, verb, -1),
            'f' | 'e' | 'E' | 'F' => self.fmt_float_verb(v, verb, 6),
            _ => self.bad_verb(verb, &Value::Float(v)),
        }
    }

    fn fmt_complex(&mut self, re: f64, im: f64, verb: char) {
        match verb {
            'v' | 'b' | 'g' | 'G' | 'x' | 'X' | 'f' | 'F' | 'e' | 'E' => {
                let old = self.f;
                self.write_byte(b'(');
                self.fmt_float(re, verb);
                self.f.plus = true;
                self.fmt_float(im, verb);
                self.write(b"i)");
                self.f = old;
            }
            _ => self.bad_verb(verb, &Value::Complex(re, im)),
        }
    }

    fn bad_verb(&mut self, verb: char, v: &Value) {
        let saved = self.f;
        self.write(b"%!");
        let mut b = Vec::new();
        push_rune(&mut b, verb);
        self.write(&b);
        self.write_byte(b'(');
        match v {
            Value::Invalid | Value::Nil => self.write(b"<nil>"),
            Value::Semver(sv, true) => {
                // Go prints while "erroring": no String() method.
                self.write(v.type_name().as_bytes());
                self.write(b"=&");
                self.f.sharp_v = false;
                self.print_semver_struct(sv, 'v', 1);
            }
            _ => {
                self.write(v.type_name().as_bytes());
                self.write_byte(b'=');
                self.f.sharp_v = false;
                self.print_value(v, 'v', 0);
            }
        }
        self.write_byte(b')');
        self.f = saved;
    }

    /// printArg.
    pub(super) fn print_arg(&mut self, v: &Value, verb: char) {
        match v {
            Value::Invalid | Value::Nil => match verb {
                'T' | 'v' => self.pad(b"<nil>"),
                _ => self.bad_verb(verb, v),
            },
            _ => {
                if verb == 'T' {
                    let t = v.type_name();
                    self.fmt_s(t.as_bytes());
                    return;
                }
                if verb == 'p' {
                    if let Value::Semver(_, true) = v {
                        self.fmt_pointer(v, verb);
                    } else {
                        self.bad_verb(verb, v);
                    }
                    return;
                }
                self.print_value(v, verb, 0);
            }
        }
    }

    /// fmtPointer for a *semver.Version (its address, as Go's differs
    /// from run to run).
    fn fmt_pointer(&mut self, v: &Value, verb: char) {
        let Value::Semver(sv, true) = v else {
            return self.bad_verb(verb, v);
        };
        let u = std::rc::Rc::as_ptr(sv) as usize as u64;
        let hex0x = |p: &mut Printer, leading: bool| {
            let old = p.f.sharp;
            p.f.sharp = leading;
            p.fmt_integer_base(u, 16, false, 'v', false);
            p.f.sharp = old;
        };
        match verb {
            'v' => {
                if self.f.sharp_v {
                    self.write_byte(b'(');
                    self.write(v.type_name().as_bytes());
                    self.write(b")(");
                    hex0x(self, true);
                    self.write_byte(b')');
                } else {
                    let lead = !self.f.sharp;
                    hex0x(self, lead);
                }
            }
            'p' => {
                let lead = !self.f.sharp;
                hex0x(self, lead);
            }
            'b' | 'o' | 'd' | 'x' | 'X' => {
                self.fmt_integer(&Value::Uint(u, UintT::Uint64), u, false, verb)
            }
            _ => self.bad_verb(verb, v),
        }
    }

    /// A semver.Version printed as the struct it is (its fields are
    /// unexported: no methods apply to them).
    fn print_semver_struct(&mut self, sv: &super::semver::Version, verb: char, depth: usize) {
        if self.f.sharp_v {
            self.write(super::semver::type_name(false).as_bytes());
        }
        self.write_byte(b'{');
        for (i, (name, field)) in super::semver::fields(sv).iter().enumerate() {
            if i > 0 {
                if self.f.sharp_v {
                    self.write(b", ");
                } else {
                    self.write_byte(b' ');
                }
            }
            if self.f.plus_v || self.f.sharp_v {
                self.write(name.as_bytes());
                self.write_byte(b':');
            }
            self.print_value(field, verb, depth + 1);
        }
        self.write_byte(b'}');
    }

    /// handleMethods for Stringer types; returns true when handled.
    fn handle_methods(&mut self, v: &Value, verb: char) -> bool {
        if self.f.sharp_v {
            if let Value::Time(t) = v {
                let s = super::dates::time_gostring(t);
                self.fmt_s(s.as_bytes());
                return true;
            }
            return false;
        }
        if !matches!(verb, 'v' | 's' | 'x' | 'X' | 'q') {
            return false;
        }
        let s: Vec<u8> = match v {
            Value::Time(t) => super::dates::time_string(t).into_bytes(),
            Value::Semver(v, _) => v.string(),
            Value::Int(i, IntT::Month) => super::dates::month_name(*i).into_bytes(),
            Value::Int(i, IntT::Weekday) => super::dates::weekday_name(*i).into_bytes(),
            Value::Int(i, IntT::Duration) => super::dates::duration_string(*i).into_bytes(),
            _ => return false,
        };
        self.fmt_string(&s, verb);
        true
    }

    pub(super) fn print_value(&mut self, v: &Value, verb: char, depth: usize) {
        if self.overflow {
            return;
        }
        if depth > MAX_VALUE_DEPTH {
            self.overflow = true;
            return;
        }
        if self.handle_methods(v, verb) {
            return;
        }
        match v {
            Value::Invalid => {
                if depth == 0 {
                    self.write(b"<invalid reflect.Value>");
                } else if verb == 'v' {
                    self.write(b"<nil>");
                } else {
                    self.bad_verb(verb, v);
                }
            }
            Value::Nil => {
                if self.f.sharp_v {
                    self.write(b"interface {}(nil)");
                } else {
                    self.write(b"<nil>");
                }
            }
            Value::Bool(b) => self.fmt_bool(*b, verb),
            Value::Int(i, _) => self.fmt_integer(v, *i as u64, true, verb),
            Value::Uint(u, _) => self.fmt_integer(v, *u, false, verb),
            Value::Float(f) => {
                if self.f.sharp_v && verb == 'v' {
                    // %#v of a float: 'g' shortest, with ".0"-less Go syntax
                    self.fmt_float_verb(*f, 'g', -1);
                } else {
                    self.fmt_float(*f, verb)
                }
            }
            Value::Complex(r, i) => self.fmt_complex(*r, *i, verb),
            Value::Str(s) => self.fmt_string(s, verb),
            Value::Time(_) => {
                // struct without method handling (e.g. %d)
                self.write(b"{");
                self.write(b"}");
            }
            Value::Semver(sv, true) => {
                if depth == 0 {
                    // &{...}: the struct, whose methods apply again.
                    self.write_byte(b'&');
                    self.print_value(&Value::Semver(sv.clone(), false), verb, depth + 1);
                } else {
                    self.fmt_pointer(v, verb);
                }
            }
            Value::Semver(sv, false) => self.print_semver_struct(sv, verb, depth),
            Value::Map(m) => {
                let m = m.borrow();
                if self.f.sharp_v {
                    self.write(v.type_name().as_bytes());
                    if m.nil {
                        self.write(b"(nil)");
                        return;
                    }
                    self.write_byte(b'{');
                } else {
                    self.write(b"map[");
                }
                for (i, (k, val)) in m.items.iter().enumerate() {
                    if i > 0 {
                        if self.f.sharp_v {
                            self.write(b", ");
                        } else {
                            self.write_byte(b' ');
                        }
                    }
                    self.fmt_string(k, verb);
                    self.write_byte(b':');
                    self.print_value(val, verb, depth + 1);
                    if self.overflow {
                        return;
                    }
                }
                self.write_byte(if self.f.sharp_v { b'}' } else { b']' });
            }
            Value::List(l) => {
                if self.f.sharp_v {
                    self.write(v.type_name().as_bytes());
                    if l.nil {
                        self.write(b"(nil)");
                        return;
                    }
                    self.write_byte(b'{');
                    for (i, e) in l.items.iter().enumerate() {
                        if i > 0 {
                            self.write(b", ");
                        }
                        self.print_value(e, verb, depth + 1);
                        if self.overflow {
                            return;
                        }
                    }
                    self.write_byte(b'}');
                } else {
                    self.write_byte(b'[');
                    for (i, e) in l.items.iter().enumerate() {
                        if i > 0 {
                            self.write_byte(b' ');
                        }
                        self.print_value(e, verb, depth + 1);
                        if self.overflow {
                            return;
                        }
                    }
                    self.write_byte(b']');
                }
                let _ = ListT::Iface;
            }
        }
    }

    pub(super) fn finish(self) -> Result<Vec<u8>, TooLong> {
        if self.overflow {
            Err(TooLong)
        } else {
            Ok(self.buf)
        }
    }
}

/// fmt.Sprint.
pub(super) fn sprint(args: &[Value]) -> Result<Vec<u8>, TooLong> {
    let mut p = Printer::new();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::Str(_));
        if i > 0 && !is_string && !prev_string {
            p.write_byte(b' ');
        }
        p.f = Flags::default();
        p.print_arg(a, 'v');
        prev_string = is_string;
    }
    p.finish()
}

/// fmt.Sprintln.
pub(super) fn sprintln(args: &[Value]) -> Result<Vec<u8>, TooLong> {
    let mut p = Printer::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            p.write_byte(b' ');
        }
        p.f = Flags::default();
        p.print_arg(a, 'v');
    }
    p.write_byte(b'\n');
    p.finish()
}

/// fmt.Sprintf("%v", v) — sprig's strval fallback and similar.
pub(super) fn sprint_v(v: &Value) -> Result<Vec<u8>, TooLong> {
    let mut p = Printer::new();
    p.print_arg(v, 'v');
    p.finish()
}

fn too_large(x: i64) -> bool {
    !(-1_000_000..=1_000_000).contains(&x)
}

fn parsenum(s: &[u8], start: usize, end: usize) -> (i64, bool, usize) {
    if start >= end {
        return (0, false, end);
    }
    let mut num: i64 = 0;
    let mut isnum = false;
    let mut i = start;
    while i < end && s[i].is_ascii_digit() {
        if too_large(num) {
            return (0, false, end);
        }
        num = num * 10 + (s[i] - b'0') as i64;
        isnum = true;
        i += 1;
    }
    (num, isnum, i)
}

fn parse_arg_number(format: &[u8]) -> (i64, usize, bool) {
    if format.len() < 3 {
        return (0, 1, false);
    }
    for i in 1..format.len() {
        if format[i] == b']' {
            let (width, ok, newi) = parsenum(format, 1, i);
            if !ok || newi != i {
                return (0, i + 1, false);
            }
            return (width - 1, i + 1, true);
        }
    }
    (0, 1, false)
}

#[allow(clippy::collapsible_match)]
fn int_from_arg(a: &[Value], arg_num: usize) -> (i64, bool, usize) {
    let mut new_arg = arg_num;
    let mut num = 0i64;
    let mut is_int = false;
    if arg_num < a.len() {
        match &a[arg_num] {
            Value::Int(n, _) => {
                num = *n;
                is_int = true;
            }
            Value::Uint(n, _) => {
                if (*n as i64) >= 0 {
                    num = *n as i64;
                    is_int = true;
                }
            }
            _ => {}
        }
        new_arg = arg_num + 1;
        if too_large(num) {
            num = 0;
            is_int = false;
        }
    }
    (num, is_int, new_arg)
}

/// fmt.Sprintf.
pub(super) fn sprintf(format: &[u8], a: &[Value]) -> Result<Vec<u8>, TooLong> {
    let mut p = Printer::new();
    let end = format.len();
    let mut arg_num: usize = 0;
    let mut after_index;
    let mut reordered = false;
    let mut i = 0;
    'format_loop: while i < end {
        let mut good_arg_num = true;
        let lasti = i;
        while i < end && format[i] != b'%' {
            i += 1;
        }
        if i > lasti {
            p.write(&format[lasti..i]);
        }
        if i >= end {
            break;
        }
        i += 1;
        p.f = Flags::default();
        // flags
        while i < end {
            let c = format[i];
            match c {
                b'#' => p.f.sharp = true,
                b'0' => p.f.zero = !p.f.minus,
                b'+' => p.f.plus = true,
                b'-' => {
                    p.f.minus = true;
                    p.f.zero = false;
                }
                b' ' => p.f.space = true,
                _ => {
                    if c.is_ascii_lowercase() && arg_num < a.len() {
                        if c == b'v' {
                            p.f.sharp_v = p.f.sharp;
                            p.f.sharp = false;
                            p.f.plus_v = p.f.plus;
                            p.f.plus = false;
                        }
                        p.print_arg(&a[arg_num], c as char);
                        arg_num += 1;
                        i += 1;
                        continue 'format_loop;
                    }
                    break;
                }
            }
            i += 1;
        }
        // argument index
        let arg_number = |p_arg: usize,
                          i: usize,
                          good: &mut bool,
                          reordered: &mut bool|
         -> (usize, usize, bool) {
            if format.len() <= i || format[i] != b'[' {
                return (p_arg, i, false);
            }
            *reordered = true;
            let (index, wid, ok) = parse_arg_number(&format[i..]);
            if ok && 0 <= index && (index as usize) < a.len() {
                return (index as usize, i + wid, true);
            }
            *good = false;
            (p_arg, i + wid, ok)
        };
        (arg_num, i, after_index) = arg_number(arg_num, i, &mut good_arg_num, &mut reordered);
        // width
        if i < end && format[i] == b'*' {
            i += 1;
            let (w, ok, na) = int_from_arg(a, arg_num);
            arg_num = na;
            p.f.wid_present = ok;
            if !ok {
                p.write(b"%!(BADWIDTH)");
            }
            if w < 0 {
                p.f.wid = (-w) as usize;
                p.f.minus = true;
                p.f.zero = false;
            } else {
                p.f.wid = w as usize;
            }
            after_index = false;
        } else {
            let (w, ok, ni) = parsenum(format, i, end);
            p.f.wid = w.max(0) as usize;
            p.f.wid_present = ok;
            i = ni;
            if after_index && p.f.wid_present {
                good_arg_num = false;
            }
        }
        // precision
        if i + 1 < end && format[i] == b'.' {
            i += 1;
            if after_index {
                good_arg_num = false;
            }
            (arg_num, i, after_index) = arg_number(arg_num, i, &mut good_arg_num, &mut reordered);
            if i < end && format[i] == b'*' {
                i += 1;
                let (pr, ok, na) = int_from_arg(a, arg_num);
                arg_num = na;
                p.f.prec_present = ok;
                p.f.prec = pr.max(0) as usize;
                if pr < 0 {
                    p.f.prec = 0;
                    p.f.prec_present = false;
                }
                if !p.f.prec_present {
                    p.write(b"%!(BADPREC)");
                }
                after_index = false;
            } else {
                let (pr, ok, ni) = parsenum(format, i, end);
                p.f.prec = pr.max(0) as usize;
                p.f.prec_present = ok;
                i = ni;
                if !p.f.prec_present {
                    p.f.prec = 0;
                    p.f.prec_present = true;
                }
            }
        }
        if !after_index {
            (arg_num, i, _) = arg_number(arg_num, i, &mut good_arg_num, &mut reordered);
        }
        if i >= end {
            p.write(b"%!(NOVERB)");
            break;
        }
        let (verb, size) = if format[i] < 0x80 {
            (format[i] as char, 1)
        } else {
            let (r, w) = decode_rune(&format[i..]);
            (r, w.max(1))
        };
        i += size;
        if verb == '%' {
            p.write_byte(b'%');
        } else if !good_arg_num {
            p.write(b"%!");
            let mut b = Vec::new();
            push_rune(&mut b, verb);
            p.write(&b);
            p.write(b"(BADINDEX)");
        } else if arg_num >= a.len() {
            p.write(b"%!");
            let mut b = Vec::new();
            push_rune(&mut b, verb);
            p.write(&b);
            p.write(b"(MISSING)");
        } else {
            if verb == 'v' {
                p.f.sharp_v = p.f.sharp;
                p.f.sharp = false;
                p.f.plus_v = p.f.plus;
                p.f.plus = false;
            }
            p.print_arg(&a[arg_num], verb);
            arg_num += 1;
        }
        if p.overflow {
            break;
        }
    }
    if !reordered && arg_num < a.len() {
        p.f = Flags::default();
        p.write(b"%!(EXTRA ");
        for (i, arg) in a[arg_num..].iter().enumerate() {
            if i > 0 {
                p.write(b", ");
            }
            match arg {
                Value::Invalid | Value::Nil => p.write(b"<nil>"),
                _ => {
                    p.write(arg.type_name().as_bytes());
                    p.write_byte(b'=');
                    p.print_arg(arg, 'v');
                }
            }
        }
        p.write_byte(b')');
    }
    let _ = tiny(0.0);
    p.finish()
}
