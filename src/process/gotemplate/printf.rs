//! A port of Go's fmt (Sprint, Sprintln, Sprintf) over the template value
//! model; the strconv pieces it needs (quoting, float formatting) are in
//! `strconv`.

use super::gostr::{self, RUNE_ERROR, decode_rune, push_rune};
use super::limits::{MAX_STRING, MAX_VALUE_DEPTH};
use super::strconv::{LOWER_HEX, UPPER_HEX, can_backquote, format_float, quote_rune, quote_with};
use super::timefmt;
use super::unicode as uni;
use super::value::{IntT, ListT, UintT, Value};
use super::version::{self, Version};

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
    fn print_semver_struct(&mut self, sv: &Version, verb: char, depth: usize) {
        if self.f.sharp_v {
            self.write(version::type_name(false).as_bytes());
        }
        self.write_byte(b'{');
        for (i, (name, field)) in semver_fields(sv).iter().enumerate() {
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
                let s = timefmt::time_gostring(t);
                self.fmt_s(s.as_bytes());
                return true;
            }
            return false;
        }
        if !matches!(verb, 'v' | 's' | 'x' | 'X' | 'q') {
            return false;
        }
        let s: Vec<u8> = match v {
            Value::Time(t) => timefmt::time_string(t).into_bytes(),
            Value::Semver(v, _) => v.string(),
            Value::Int(i, IntT::Month) => timefmt::month_name(*i).into_bytes(),
            Value::Int(i, IntT::Weekday) => timefmt::weekday_name(*i).into_bytes(),
            Value::Int(i, IntT::Duration) => timefmt::duration_string(*i).into_bytes(),
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

/// A semver.Version's fields in order, for fmt's struct printing.
fn semver_fields(v: &Version) -> [(&'static str, Value); 6] {
    [
        ("major", Value::Uint(v.major, UintT::Uint64)),
        ("minor", Value::Uint(v.minor, UintT::Uint64)),
        ("patch", Value::Uint(v.patch, UintT::Uint64)),
        ("pre", Value::str(&v.pre)),
        ("metadata", Value::str(&v.metadata)),
        ("original", Value::str(&v.original)),
    ]
}
