//! encoding/json (Unmarshal into interface{}, Marshal, MarshalIndent,
//! Encoder without HTML escaping) and shopspring/decimal's arithmetic for
//! sprig's float functions.

use std::collections::BTreeMap;

use super::func::Ctx;
use super::limits::{MAX_STRING, MAX_VALUE_DEPTH};
use super::value::{IntT, ListT, MapT, Value};
use super::{gostr, strconv, timefmt};

/// json.Unmarshal(data, &interface{}).
pub(super) fn from_json(c: &mut Ctx<'_>, data: &[u8]) -> Result<Value, String> {
    c.charge_bytes(data.len() * 4)?;
    let text = gostr::to_string_lossy(data);
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        if e.is_eof() {
            "unexpected end of JSON input".to_string()
        } else {
            format!("invalid JSON: {e}")
        }
    })?;
    Ok(convert(&v))
}

fn convert(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::str(s.as_bytes()),
        serde_json::Value::Array(a) => Value::list(a.iter().map(convert).collect(), ListT::Iface),
        serde_json::Value::Object(o) => {
            let mut m = BTreeMap::new();
            for (k, v) in o {
                m.insert(k.as_bytes().to_vec(), convert(v));
            }
            Value::map(m, MapT::Iface)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    /// json.Marshal
    Plain,
    /// json.MarshalIndent(v, "", "  ")
    Pretty,
    /// Encoder with SetEscapeHTML(false)
    Raw,
}

struct Enc {
    out: Vec<u8>,
    style: Style,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl Enc {
    fn check(&self) -> Result<(), String> {
        if self.out.len() > MAX_STRING {
            return Err("result exceeds the size limit".into());
        }
        Ok(())
    }

    fn string(&mut self, s: &[u8]) {
        let html = self.style != Style::Raw;
        self.out.push(b'"');
        let mut i = 0;
        while i < s.len() {
            let b = s[i];
            if b < 0x80 {
                match b {
                    b'"' => self.out.extend_from_slice(b"\\\""),
                    b'\\' => self.out.extend_from_slice(b"\\\\"),
                    b'\n' => self.out.extend_from_slice(b"\\n"),
                    b'\r' => self.out.extend_from_slice(b"\\r"),
                    b'\t' => self.out.extend_from_slice(b"\\t"),
                    0x08 => self.out.extend_from_slice(b"\\b"),
                    0x0c => self.out.extend_from_slice(b"\\f"),
                    b'<' | b'>' | b'&' if html => {
                        self.out.extend_from_slice(b"\\u00");
                        self.out.push(HEX[(b >> 4) as usize]);
                        self.out.push(HEX[(b & 0xF) as usize]);
                    }
                    b if b < 0x20 => {
                        self.out.extend_from_slice(b"\\u00");
                        self.out.push(HEX[(b >> 4) as usize]);
                        self.out.push(HEX[(b & 0xF) as usize]);
                    }
                    b => self.out.push(b),
                }
                i += 1;
                continue;
            }
            let (r, w) = gostr::decode_rune(&s[i..]);
            if r == gostr::RUNE_ERROR && w <= 1 {
                self.out.extend_from_slice(b"\\ufffd");
                i += 1;
                continue;
            }
            if r == '\u{2028}' || r == '\u{2029}' {
                self.out.extend_from_slice(if r == '\u{2028}' {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += w;
                continue;
            }
            self.out.extend_from_slice(&s[i..i + w]);
            i += w;
        }
        self.out.push(b'"');
    }

    fn newline(&mut self, depth: usize) {
        if self.style == Style::Pretty {
            self.out.push(b'\n');
            for _ in 0..depth {
                self.out.extend_from_slice(b"  ");
            }
        }
    }

    fn value(&mut self, c: &mut Ctx<'_>, v: &Value, depth: usize) -> Result<(), String> {
        if depth > MAX_VALUE_DEPTH {
            return Err("json: value nesting too deep".into());
        }
        c.charge(1)?;
        self.check()?;
        match v {
            Value::Invalid | Value::Nil => self.out.extend_from_slice(b"null"),
            Value::Bool(b) => self
                .out
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Int(i, _) => self.out.extend_from_slice(i.to_string().as_bytes()),
            Value::Uint(u, _) => self.out.extend_from_slice(u.to_string().as_bytes()),
            Value::Float(f) => self.out.extend_from_slice(&float_json(*f)?),
            Value::Complex(..) => return Err("json: unsupported type: complex128".into()),
            Value::Str(s) => self.string(s),
            Value::Time(t) => {
                let s = timefmt::time_rfc3339nano(t).map_err(|e| {
                    format!("json: error calling MarshalJSON for type time.Time: {e}")
                })?;
                self.string(s.as_bytes());
            }
            // MarshalJSON: json.Marshal(v.String()).
            Value::Semver(sv, _) => self.string(&sv.string()),
            Value::List(l) => {
                if l.nil {
                    self.out.extend_from_slice(b"null");
                    return Ok(());
                }
                self.out.push(b'[');
                if l.items.is_empty() {
                    self.out.push(b']');
                    return Ok(());
                }
                for (i, e) in l.items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.newline(depth + 1);
                    self.value(c, e, depth + 1)?;
                }
                self.newline(depth);
                self.out.push(b']');
            }
            Value::Map(m) => {
                let m = m.borrow();
                if m.nil {
                    self.out.extend_from_slice(b"null");
                    return Ok(());
                }
                self.out.push(b'{');
                if m.items.is_empty() {
                    self.out.push(b'}');
                    return Ok(());
                }
                for (i, (k, e)) in m.items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.newline(depth + 1);
                    self.string(k);
                    self.out.push(b':');
                    if self.style == Style::Pretty {
                        self.out.push(b' ');
                    }
                    self.value(c, e, depth + 1)?;
                }
                self.newline(depth);
                self.out.push(b'}');
            }
        }
        let _ = IntT::Int;
        Ok(())
    }
}

/// encoding/json's float64 encoding.
pub(super) fn float_json(f: f64) -> Result<Vec<u8>, String> {
    if f.is_nan() || f.is_infinite() {
        let s = strconv::format_float(f, b'g', -1);
        return Err(format!(
            "json: unsupported value: {}",
            gostr::to_string_lossy(&s)
        ));
    }
    let abs = f.abs();
    let mut fmt = b'f';
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        fmt = b'e';
    }
    let mut b = strconv::format_float(f, fmt, -1);
    if fmt == b'e' {
        let n = b.len();
        if n >= 4 && b[n - 4] == b'e' && b[n - 3] == b'-' && b[n - 2] == b'0' {
            b[n - 2] = b[n - 1];
            b.truncate(n - 1);
        }
    }
    Ok(b)
}

/// json.Marshal & co. `Err(Ok(msg))` is an error Go reports too (sprig's
/// toJson swallows it); `Err(Err(msg))` is one of this engine's limits,
/// which always fails the execution.
pub(super) fn to_json(
    c: &mut Ctx<'_>,
    v: &Value,
    style: Style,
) -> Result<Vec<u8>, Result<String, String>> {
    let mut e = Enc {
        out: Vec::new(),
        style,
    };
    match e.value(c, v, 0).and_then(|_| e.check()) {
        Ok(()) => Ok(e.out),
        Err(m) if m.starts_with("json: unsupported") || m.starts_with("json: error calling") => {
            Err(Ok(m))
        }
        Err(m) => Err(Err(m)),
    }
}

/// sprig's toJson / toPrettyJson: Go's marshal errors become "".
pub(super) fn to_json_lenient(c: &mut Ctx<'_>, v: &Value, style: Style) -> Result<Vec<u8>, String> {
    match to_json(c, v, style) {
        Ok(b) => Ok(b),
        Err(Ok(_)) => Ok(Vec::new()),
        Err(Err(m)) => Err(m),
    }
}

/// mustToJson & co.: every error fails.
pub(super) fn to_json_strict(c: &mut Ctx<'_>, v: &Value, style: Style) -> Result<Vec<u8>, String> {
    to_json(c, v, style).map_err(|e| match e {
        Ok(m) | Err(m) => m,
    })
}

// ---------------- shopspring/decimal ----------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum DecOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Clone, Copy, Debug)]
struct Dec {
    m: i128,
    e: i32,
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

fn dec_from_f64(f: f64) -> Result<Dec, String> {
    if f.is_nan() || f.is_infinite() {
        let s = strconv::format_float(f, b'g', -1);
        return Err(format!(
            "Cannot create a Decimal from {}",
            gostr::to_string_lossy(&s)
        ));
    }
    if f == 0.0 {
        return Ok(Dec { m: 0, e: 0 });
    }
    let s = format!("{:e}", f);
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let nd = digits.len() as i32;
    let m: i128 = digits.parse().unwrap_or(0);
    Ok(Dec {
        m: if neg { -m } else { m },
        e: exp - (nd - 1),
    })
}

fn align(a: Dec, b: Dec) -> Option<(i128, i128, i32)> {
    if a.e == b.e {
        return Some((a.m, b.m, a.e));
    }
    let (hi, lo) = if a.e > b.e { (a, b) } else { (b, a) };
    let diff = (hi.e - lo.e) as u32;
    let scaled = hi.m.checked_mul(pow10(diff)?)?;
    if a.e > b.e {
        Some((scaled, lo.m, lo.e))
    } else {
        Some((lo.m, scaled, lo.e))
    }
}

fn dec_op(a: Dec, b: Dec, op: DecOp) -> Result<Option<Dec>, String> {
    Ok(match op {
        DecOp::Add => align(a, b).and_then(|(x, y, e)| x.checked_add(y).map(|m| Dec { m, e })),
        DecOp::Sub => align(a, b).and_then(|(x, y, e)| x.checked_sub(y).map(|m| Dec { m, e })),
        DecOp::Mul => a.m.checked_mul(b.m).map(|m| Dec { m, e: a.e + b.e }),
        DecOp::Div => {
            if b.m == 0 {
                return Err("decimal division by 0".into());
            }
            let prec = 16i32;
            let k = a.e - b.e + prec;
            let (n, d) = if k >= 0 {
                match pow10(k as u32).and_then(|p| a.m.checked_mul(p)) {
                    Some(n) => (n, b.m),
                    None => return Ok(None),
                }
            } else {
                match pow10((-k) as u32).and_then(|p| b.m.checked_mul(p)) {
                    Some(d) => (a.m, d),
                    None => return Ok(None),
                }
            };
            let mut q = n / d;
            let r = n % d;
            if r != 0 {
                let r2 = r.unsigned_abs().checked_mul(2);
                match r2 {
                    Some(r2) if r2 < d.unsigned_abs() => {}
                    _ => {
                        if (n < 0) != (d < 0) {
                            q -= 1;
                        } else {
                            q += 1;
                        }
                    }
                }
            }
            Some(Dec { m: q, e: -prec })
        }
    })
}

fn dec_to_f64(d: Dec) -> f64 {
    format!("{}e{}", d.m, d.e).parse::<f64>().unwrap_or(0.0)
}

/// sprig's execDecimalOp.
pub(super) fn decimal_op(a: f64, rest: &[f64], op: DecOp) -> Result<f64, String> {
    let mut acc = dec_from_f64(a)?;
    let mut approx: Option<f64> = None;
    for &x in rest {
        let d = dec_from_f64(x)?;
        if let Some(f) = approx {
            approx = Some(match op {
                DecOp::Add => f + x,
                DecOp::Sub => f - x,
                DecOp::Mul => f * x,
                DecOp::Div => {
                    if x == 0.0 {
                        return Err("decimal division by 0".into());
                    }
                    f / x
                }
            });
            continue;
        }
        match dec_op(acc, d, op)? {
            Some(r) => acc = r,
            None => {
                let f = dec_to_f64(acc);
                approx = Some(match op {
                    DecOp::Add => f + x,
                    DecOp::Sub => f - x,
                    DecOp::Mul => f * x,
                    DecOp::Div => f / x,
                });
            }
        }
    }
    Ok(approx.unwrap_or_else(|| dec_to_f64(acc)))
}
