//! Go's printing of the time types: `time.Time`'s String, GoString and
//! MarshalJSON forms, `Format`, `time.Duration`'s String, the names of
//! `time.Month` and `time.Weekday`. fmt, sprig's strval, JSON and the
//! date functions all print times through these.

use super::super::goduration;
use super::super::gotime::{self, LONG_DAY_NAMES, LONG_MONTH_NAMES};
use super::gostr;
use super::value::GoTime;

pub(super) fn month_name(m: i64) -> String {
    if (1..=12).contains(&m) {
        LONG_MONTH_NAMES[(m - 1) as usize].to_string()
    } else {
        format!("%!Month({m})")
    }
}

pub(super) fn weekday_name(d: i64) -> String {
    if (0..=6).contains(&d) {
        LONG_DAY_NAMES[d as usize].to_string()
    } else {
        format!("%!Weekday({d})")
    }
}

/// Go's `t.Format(layout)`.
pub(super) fn go_format(t: &GoTime, layout: &[u8]) -> Vec<u8> {
    gotime::format_bytes_in(t.t, layout, &t.loc)
}

/// time.Time.String().
pub(super) fn time_string(t: &GoTime) -> String {
    let mut s = go_format(t, b"2006-01-02 15:04:05.999999999 -0700 MST");
    if let Some(m) = t.mono {
        let sign = if m < 0 { '-' } else { '+' };
        let m2 = m.unsigned_abs();
        let (m1, m2) = (m2 / 1_000_000_000, m2 % 1_000_000_000);
        let (m0, m1) = (m1 / 1_000_000_000, m1 % 1_000_000_000);
        let m1 = if m0 != 0 {
            format!("{m0}{m1:09}")
        } else {
            m1.to_string()
        };
        s.extend_from_slice(format!(" m={sign}{m1}.{m2:09}").as_bytes());
    }
    gostr::to_string_lossy(&s)
}

/// time.Time.GoString() (for %#v).
pub(super) fn time_gostring(t: &GoTime) -> String {
    let (c, _, _) = t.t.civil(&t.loc);
    let loc = match t.loc.name() {
        "UTC" => "time.UTC".to_string(),
        "Local" => "time.Local".to_string(),
        n => format!("time.Location({})", goduration::quote(n.as_bytes())),
    };
    format!(
        "time.Date({}, time.{}, {}, {}, {}, {}, {}, {})",
        c.year,
        month_name(c.month),
        c.day,
        c.hour,
        c.minute,
        c.second,
        t.t.subsec_nanos(),
        loc
    )
}

/// MarshalJSON's RFC 3339 with nanoseconds.
pub(super) fn time_rfc3339nano(t: &GoTime) -> Result<String, String> {
    let (c, _, _) = t.t.civil(&t.loc);
    if !(0..=9999).contains(&c.year) {
        return Err("Time.MarshalJSON: year outside of range [0,9999]".into());
    }
    Ok(gostr::to_string_lossy(&go_format(
        t,
        b"2006-01-02T15:04:05.999999999Z07:00",
    )))
}

// ---------------- durations ----------------

fn fmt_frac(buf: &mut Vec<u8>, v: u64, prec: usize) -> u64 {
    // writes reversed into buf
    let mut v = v;
    let mut print = false;
    for _ in 0..prec {
        let digit = v % 10;
        print = print || digit != 0;
        if print {
            buf.push(digit as u8 + b'0');
        }
        v /= 10;
    }
    if print {
        buf.push(b'.');
    }
    v
}

fn fmt_int(buf: &mut Vec<u8>, v: u64) {
    let mut v = v;
    if v == 0 {
        buf.push(b'0');
    } else {
        while v > 0 {
            buf.push((v % 10) as u8 + b'0');
            v /= 10;
        }
    }
}

/// time.Duration.String().
pub(super) fn duration_string(d: i64) -> String {
    let mut buf: Vec<u8> = Vec::with_capacity(32); // reversed
    let neg = d < 0;
    let mut u = d.unsigned_abs();
    if u < 1_000_000_000 {
        let prec;
        buf.push(b's');
        if u == 0 {
            return "0s".into();
        } else if u < 1_000 {
            prec = 0;
            buf.push(b'n');
        } else if u < 1_000_000 {
            prec = 3;
            buf.extend_from_slice(&[0xB5, 0xC2]);
        } else {
            prec = 6;
            buf.push(b'm');
        }
        u = fmt_frac(&mut buf, u, prec);
        fmt_int(&mut buf, u);
    } else {
        buf.push(b's');
        u = fmt_frac(&mut buf, u, 9);
        fmt_int(&mut buf, u % 60);
        u /= 60;
        if u > 0 {
            buf.push(b'm');
            fmt_int(&mut buf, u % 60);
            u /= 60;
            if u > 0 {
                buf.push(b'h');
                fmt_int(&mut buf, u);
            }
        }
    }
    if neg {
        buf.push(b'-');
    }
    buf.reverse();
    gostr::to_string_lossy(&buf)
}
