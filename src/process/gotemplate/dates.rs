//! Every date/time function of the template function map, in one place:
//! sprig's now/date/dateInZone/htmlDate/toDate/unixEpoch/dateModify/ago/
//! duration/durationRound, time.Time / time.Duration / time.Month methods,
//! Go layout formatting and parsing, Duration parsing and printing.
//!
//! Formatting goes through [`go_format`], a self-contained implementation of
//! Go's layout semantics. INTEGRATION NOTE: when this module is placed
//! beside the `gotime` module, `go_format` can delegate to
//! `super::super::gotime::format(ts_ns, layout, tz)` (see the function).

use std::rc::Rc;
use std::sync::OnceLock;

use jiff::tz::TimeZone;
use jiff::{Timestamp, civil};

use super::exec::{Ctx, FnResult};
use super::funcs::{FuncDef, PT, i, s};
use super::printf;
use super::value::{GoTime, IntT, Value};

macro_rules! def {
    ($name:expr, [$($p:ident),*], $imp:expr) => {
        FuncDef { name: $name, params: &[$(PT::$p),*], variadic: None, imp: $imp, builtin: false }
    };
}

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

pub(super) fn month_name(m: i64) -> String {
    if (1..=12).contains(&m) {
        LONG_MONTHS[(m - 1) as usize].to_string()
    } else {
        format!("%!Month({m})")
    }
}

pub(super) fn weekday_name(d: i64) -> String {
    if (0..=6).contains(&d) {
        LONG_DAYS[d as usize].to_string()
    } else {
        format!("%!Weekday({d})")
    }
}

// ---------------- locations ----------------

fn utc_time(ts: Timestamp) -> GoTime {
    GoTime {
        ts,
        tz: TimeZone::UTC,
        loc: Rc::from("UTC"),
        mono: None,
        fixed_name: None,
    }
}

fn local_tz() -> TimeZone {
    TimeZone::try_system().unwrap_or(TimeZone::UTC)
}

fn local_time(ts: Timestamp) -> GoTime {
    GoTime {
        ts,
        tz: local_tz(),
        loc: Rc::from("Local"),
        mono: None,
        fixed_name: None,
    }
}

/// time.LoadLocation.
fn load_location(name: &str) -> Option<(TimeZone, Rc<str>)> {
    match name {
        "" | "UTC" => Some((TimeZone::UTC, Rc::from("UTC"))),
        "Local" => Some((local_tz(), Rc::from("Local"))),
        n => jiff::tz::db().get(n).ok().map(|tz| (tz, Rc::from(n))),
    }
}

fn zero_time() -> GoTime {
    utc_time(Timestamp::from_second(-62_135_596_800).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn process_start() -> std::time::Instant {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    *START.get_or_init(std::time::Instant::now)
}

/// time.Now() (with a monotonic reading relative to process start).
pub(super) fn now() -> GoTime {
    let start = process_start();
    let mono = start.elapsed().as_nanos() as i64 + 1;
    let mut t = local_time(Timestamp::now());
    t.mono = Some(mono);
    t
}

fn unix(sec: i64) -> Result<GoTime, String> {
    Timestamp::from_second(sec)
        .map(local_time)
        .map_err(|_| "time out of range".to_string())
}

fn offset_info(t: &GoTime) -> (i32, String) {
    let info = t.tz.to_offset_info(t.ts);
    let off = info.offset().seconds();
    if let Some(n) = &t.fixed_name {
        return (off, n.to_string());
    }
    let abbr = if &*t.loc == "UTC" {
        "UTC".to_string()
    } else {
        info.abbreviation().to_string()
    };
    (off, abbr)
}

// ---------------- layouts ----------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Std {
    None,
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    TZ,
    Iso8601TZ,
    Iso8601SecondsTZ,
    Iso8601ShortTZ,
    Iso8601ColonTZ,
    Iso8601ColonSecondsTZ,
    NumTZ,
    NumSecondsTz,
    NumShortTZ,
    NumColonTZ,
    NumColonSecondsTZ,
    /// digits, separator
    Frac0(usize, u8),
    Frac9(usize, u8),
}

fn starts_lower(s: &[u8]) -> bool {
    s.first().is_some_and(|c| c.is_ascii_lowercase())
}

/// Go's nextStdChunk: (prefix, std, suffix).
#[allow(clippy::collapsible_match)]
fn next_std_chunk(layout: &[u8]) -> (&[u8], Std, &[u8]) {
    let l = layout;
    let n = l.len();
    let has = |i: usize, p: &[u8]| n >= i + p.len() && &l[i..i + p.len()] == p;
    for i in 0..n {
        match l[i] {
            b'J' => {
                if has(i, b"Jan") {
                    if has(i, b"January") {
                        return (&l[..i], Std::LongMonth, &l[i + 7..]);
                    }
                    if !starts_lower(&l[i + 3..]) {
                        return (&l[..i], Std::Month, &l[i + 3..]);
                    }
                }
            }
            b'M' => {
                if n >= i + 3 {
                    if has(i, b"Mon") {
                        if has(i, b"Monday") {
                            return (&l[..i], Std::LongWeekDay, &l[i + 6..]);
                        }
                        if !starts_lower(&l[i + 3..]) {
                            return (&l[..i], Std::WeekDay, &l[i + 3..]);
                        }
                    }
                    if has(i, b"MST") {
                        return (&l[..i], Std::TZ, &l[i + 3..]);
                    }
                }
            }
            b'0' => {
                if n >= i + 2 && (b'1'..=b'6').contains(&l[i + 1]) {
                    let s = [
                        Std::ZeroMonth,
                        Std::ZeroDay,
                        Std::ZeroHour12,
                        Std::ZeroMinute,
                        Std::ZeroSecond,
                        Std::Year,
                    ][(l[i + 1] - b'1') as usize];
                    return (&l[..i], s, &l[i + 2..]);
                }
                if n >= i + 3 && l[i + 1] == b'0' && l[i + 2] == b'2' {
                    return (&l[..i], Std::ZeroYearDay, &l[i + 3..]);
                }
            }
            b'1' => {
                if n >= i + 2 && l[i + 1] == b'5' {
                    return (&l[..i], Std::Hour, &l[i + 2..]);
                }
                return (&l[..i], Std::NumMonth, &l[i + 1..]);
            }
            b'2' => {
                if has(i, b"2006") {
                    return (&l[..i], Std::LongYear, &l[i + 4..]);
                }
                return (&l[..i], Std::Day, &l[i + 1..]);
            }
            b'_' => {
                if n >= i + 2 && l[i + 1] == b'2' {
                    if n >= i + 5 && &l[i + 1..i + 5] == b"2006" {
                        return (&l[..i + 1], Std::LongYear, &l[i + 5..]);
                    }
                    return (&l[..i], Std::UnderDay, &l[i + 2..]);
                }
                if n >= i + 3 && l[i + 1] == b'_' && l[i + 2] == b'2' {
                    return (&l[..i], Std::UnderYearDay, &l[i + 3..]);
                }
            }
            b'3' => return (&l[..i], Std::Hour12, &l[i + 1..]),
            b'4' => return (&l[..i], Std::Minute, &l[i + 1..]),
            b'5' => return (&l[..i], Std::Second, &l[i + 1..]),
            b'P' => {
                if n >= i + 2 && l[i + 1] == b'M' {
                    return (&l[..i], Std::PM, &l[i + 2..]);
                }
            }
            b'p' => {
                if n >= i + 2 && l[i + 1] == b'm' {
                    return (&l[..i], Std::Pm, &l[i + 2..]);
                }
            }
            b'-' => {
                if has(i, b"-070000") {
                    return (&l[..i], Std::NumSecondsTz, &l[i + 7..]);
                }
                if has(i, b"-07:00:00") {
                    return (&l[..i], Std::NumColonSecondsTZ, &l[i + 9..]);
                }
                if has(i, b"-0700") {
                    return (&l[..i], Std::NumTZ, &l[i + 5..]);
                }
                if has(i, b"-07:00") {
                    return (&l[..i], Std::NumColonTZ, &l[i + 6..]);
                }
                if has(i, b"-07") {
                    return (&l[..i], Std::NumShortTZ, &l[i + 3..]);
                }
            }
            b'Z' => {
                if has(i, b"Z070000") {
                    return (&l[..i], Std::Iso8601SecondsTZ, &l[i + 7..]);
                }
                if has(i, b"Z07:00:00") {
                    return (&l[..i], Std::Iso8601ColonSecondsTZ, &l[i + 9..]);
                }
                if has(i, b"Z0700") {
                    return (&l[..i], Std::Iso8601TZ, &l[i + 5..]);
                }
                if has(i, b"Z07:00") {
                    return (&l[..i], Std::Iso8601ColonTZ, &l[i + 6..]);
                }
                if has(i, b"Z07") {
                    return (&l[..i], Std::Iso8601ShortTZ, &l[i + 3..]);
                }
            }
            c @ (b'.' | b',') => {
                if i + 1 < n && (l[i + 1] == b'0' || l[i + 1] == b'9') {
                    let ch = l[i + 1];
                    let mut j = i + 1;
                    while j < n && l[j] == ch {
                        j += 1;
                    }
                    if !(j < n && l[j].is_ascii_digit()) {
                        let digits = j - (i + 1);
                        let s = if ch == b'0' {
                            Std::Frac0(digits, c)
                        } else {
                            Std::Frac9(digits, c)
                        };
                        return (&l[..i], s, &l[j..]);
                    }
                }
            }
            _ => {}
        }
    }
    (l, Std::None, b"")
}

fn append_int(b: &mut Vec<u8>, x: i64, width: usize) {
    let mut u = x.unsigned_abs();
    if x < 0 {
        b.push(b'-');
    }
    let mut digits = Vec::with_capacity(20);
    if u == 0 {
        digits.push(b'0');
    }
    while u > 0 {
        digits.push(b'0' + (u % 10) as u8);
        u /= 10;
    }
    for _ in digits.len()..width {
        b.push(b'0');
    }
    digits.reverse();
    b.extend_from_slice(&digits);
}

/// Go layout formatting of an instant in a zone.
///
/// SWAP POINT: this is the local stand-in for `gotime::format`. Once the
/// `gotime` sibling module is integrated, the body may become
/// `super::super::gotime::format(t.ts.as_nanosecond() as i64, &layout_str, &t.tz)`
/// for instants within ±292 years of 1970 (keeping this code for the rest).
pub(super) fn go_format(t: &GoTime, layout: &[u8]) -> Vec<u8> {
    let zdt = t.ts.to_zoned(t.tz.clone());
    let (offset, name) = offset_info(t);
    let dt = zdt.datetime();
    let year = dt.year() as i64;
    let month = dt.month() as i64;
    let day = dt.day() as i64;
    let yday = dt.day_of_year() as i64;
    let hour = dt.hour() as i64;
    let min = dt.minute() as i64;
    let sec = dt.second() as i64;
    let nsec = dt.subsec_nanosecond() as i64;
    let wday = dt.weekday().to_sunday_zero_offset() as usize;
    let mut b = Vec::with_capacity(layout.len() + 10);
    let mut layout = layout;
    while !layout.is_empty() {
        let (prefix, std, suffix) = next_std_chunk(layout);
        b.extend_from_slice(prefix);
        if std == Std::None {
            break;
        }
        layout = suffix;
        match std {
            Std::Year => append_int(&mut b, year.abs() % 100, 2),
            Std::LongYear => append_int(&mut b, year, 4),
            Std::Month => b.extend_from_slice(&LONG_MONTHS[(month - 1) as usize].as_bytes()[..3]),
            Std::LongMonth => b.extend_from_slice(LONG_MONTHS[(month - 1) as usize].as_bytes()),
            Std::NumMonth => append_int(&mut b, month, 0),
            Std::ZeroMonth => append_int(&mut b, month, 2),
            Std::WeekDay => b.extend_from_slice(&LONG_DAYS[wday].as_bytes()[..3]),
            Std::LongWeekDay => b.extend_from_slice(LONG_DAYS[wday].as_bytes()),
            Std::Day => append_int(&mut b, day, 0),
            Std::UnderDay => {
                if day < 10 {
                    b.push(b' ');
                }
                append_int(&mut b, day, 0);
            }
            Std::ZeroDay => append_int(&mut b, day, 2),
            Std::UnderYearDay => {
                if yday < 100 {
                    b.push(b' ');
                    if yday < 10 {
                        b.push(b' ');
                    }
                }
                append_int(&mut b, yday, 0);
            }
            Std::ZeroYearDay => append_int(&mut b, yday, 3),
            Std::Hour => append_int(&mut b, hour, 2),
            Std::Hour12 | Std::ZeroHour12 => {
                let mut hr = hour % 12;
                if hr == 0 {
                    hr = 12;
                }
                append_int(&mut b, hr, if std == Std::Hour12 { 0 } else { 2 });
            }
            Std::Minute => append_int(&mut b, min, 0),
            Std::ZeroMinute => append_int(&mut b, min, 2),
            Std::Second => append_int(&mut b, sec, 0),
            Std::ZeroSecond => append_int(&mut b, sec, 2),
            Std::PM => b.extend_from_slice(if hour >= 12 { b"PM" } else { b"AM" }),
            Std::Pm => b.extend_from_slice(if hour >= 12 { b"pm" } else { b"am" }),
            Std::TZ => {
                if !name.is_empty() {
                    b.extend_from_slice(name.as_bytes());
                } else {
                    let mut zone = offset as i64 / 60;
                    if zone < 0 {
                        b.push(b'-');
                        zone = -zone;
                    } else {
                        b.push(b'+');
                    }
                    append_int(&mut b, zone / 60, 2);
                    append_int(&mut b, zone % 60, 2);
                }
            }
            Std::Frac0(n, sep) | Std::Frac9(n, sep) => {
                let trim = matches!(std, Std::Frac9(..));
                let n = n.min(9);
                if trim && (n == 0 || nsec == 0) {
                    continue;
                }
                let mut f = Vec::new();
                append_int(&mut f, nsec, 9);
                f.truncate(n);
                if trim {
                    while f.last() == Some(&b'0') {
                        f.pop();
                    }
                    if f.is_empty() {
                        continue;
                    }
                }
                b.push(sep);
                b.extend_from_slice(&f);
            }
            tz => {
                let iso = matches!(
                    tz,
                    Std::Iso8601TZ
                        | Std::Iso8601ColonTZ
                        | Std::Iso8601SecondsTZ
                        | Std::Iso8601ShortTZ
                        | Std::Iso8601ColonSecondsTZ
                );
                if offset == 0 && iso {
                    b.push(b'Z');
                    continue;
                }
                let mut zone = offset as i64 / 60;
                let mut absoff = offset as i64;
                if zone < 0 {
                    b.push(b'-');
                    zone = -zone;
                    absoff = -absoff;
                } else {
                    b.push(b'+');
                }
                append_int(&mut b, zone / 60, 2);
                if matches!(
                    tz,
                    Std::Iso8601ColonTZ
                        | Std::NumColonTZ
                        | Std::Iso8601ColonSecondsTZ
                        | Std::NumColonSecondsTZ
                ) {
                    b.push(b':');
                }
                if !matches!(tz, Std::NumShortTZ | Std::Iso8601ShortTZ) {
                    append_int(&mut b, zone % 60, 2);
                }
                if matches!(
                    tz,
                    Std::Iso8601SecondsTZ
                        | Std::NumSecondsTz
                        | Std::NumColonSecondsTZ
                        | Std::Iso8601ColonSecondsTZ
                ) {
                    if matches!(tz, Std::NumColonSecondsTZ | Std::Iso8601ColonSecondsTZ) {
                        b.push(b':');
                    }
                    append_int(&mut b, absoff % 60, 2);
                }
            }
        }
    }
    b
}

/// time.Time.String().
pub(super) fn time_string(t: &GoTime) -> String {
    let mut s = go_format(t, b"2006-01-02 15:04:05.999999999 -0700 MST");
    if let Some(m) = t.mono {
        let sign = if m < 0 { b'-' } else { b'+' };
        let m2 = m.unsigned_abs();
        let (m1, m2) = (m2 / 1_000_000_000, m2 % 1_000_000_000);
        let (m0, m1) = (m1 / 1_000_000_000, m1 % 1_000_000_000);
        s.extend_from_slice(b" m=");
        s.push(sign);
        let mut wid = 0;
        if m0 != 0 {
            append_int(&mut s, m0 as i64, 0);
            wid = 9;
        }
        append_int(&mut s, m1 as i64, wid);
        s.push(b'.');
        append_int(&mut s, m2 as i64, 9);
    }
    super::gostr::to_string_lossy(&s)
}

/// time.Time.GoString() (for %#v).
pub(super) fn time_gostring(t: &GoTime) -> String {
    let dt = t.ts.to_zoned(t.tz.clone()).datetime();
    let loc = match &*t.loc {
        "UTC" => "time.UTC".to_string(),
        "Local" => "time.Local".to_string(),
        n => format!("time.Location({})", printf::quote_str(n.as_bytes())),
    };
    format!(
        "time.Date({}, time.{}, {}, {}, {}, {}, {}, {})",
        dt.year(),
        month_name(dt.month() as i64),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond(),
        loc
    )
}

/// MarshalJSON's RFC 3339 with nanoseconds.
pub(super) fn time_rfc3339nano(t: &GoTime) -> Result<String, String> {
    let y = t.ts.to_zoned(t.tz.clone()).year();
    if !(0..=9999).contains(&y) {
        return Err("Time.MarshalJSON: year outside of range [0,9999]".into());
    }
    Ok(super::gostr::to_string_lossy(&go_format(
        t,
        b"2006-01-02T15:04:05.999999999Z07:00",
    )))
}

// ---------------- parsing ----------------

fn cut_space(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|c| **c == b' ').count();
    &s[n..]
}

fn skip<'v>(value: &'v [u8], prefix: &[u8]) -> Result<&'v [u8], ()> {
    let mut v = value;
    let mut p = prefix;
    while !p.is_empty() {
        if p[0] == b' ' {
            if !v.is_empty() && v[0] != b' ' {
                return Err(());
            }
            p = cut_space(p);
            v = cut_space(v);
            continue;
        }
        if v.is_empty() || v[0] != p[0] {
            return Err(());
        }
        p = &p[1..];
        v = &v[1..];
    }
    Ok(v)
}

fn is_digit(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(|c| c.is_ascii_digit())
}

fn getnum(s: &[u8], fixed: bool) -> Result<(i64, &[u8]), ()> {
    if !is_digit(s, 0) {
        return Err(());
    }
    if !is_digit(s, 1) {
        if fixed {
            return Err(());
        }
        return Ok(((s[0] - b'0') as i64, &s[1..]));
    }
    Ok((((s[0] - b'0') * 10 + (s[1] - b'0')) as i64, &s[2..]))
}

fn getnum3(s: &[u8], fixed: bool) -> Result<(i64, &[u8]), ()> {
    let mut n = 0i64;
    let mut i = 0;
    while i < 3 && is_digit(s, i) {
        n = n * 10 + (s[i] - b'0') as i64;
        i += 1;
    }
    if i == 0 || fixed && i != 3 {
        return Err(());
    }
    Ok((n, &s[i..]))
}

fn lookup<'v>(tab: &[&str], val: &'v [u8], short: bool) -> Result<(usize, &'v [u8]), ()> {
    for (i, v) in tab.iter().enumerate() {
        let v = if short {
            &v.as_bytes()[..3]
        } else {
            v.as_bytes()
        };
        if val.len() >= v.len() && val[..v.len()].eq_ignore_ascii_case(v) {
            return Ok((i, &val[v.len()..]));
        }
    }
    Err(())
}

fn parse_nanoseconds(value: &[u8], nbytes: usize) -> Result<(i64, bool), ()> {
    if value.is_empty() || !(value[0] == b'.' || value[0] == b',') {
        return Err(());
    }
    let nbytes = nbytes.min(value.len());
    let digits = &value[1..nbytes];
    let mut ns: i64 = 0;
    for (k, c) in digits.iter().enumerate() {
        if !c.is_ascii_digit() {
            return Err(());
        }
        if k < 9 {
            ns = ns * 10 + (c - b'0') as i64;
        }
    }
    for _ in digits.len()..9 {
        ns *= 10;
    }
    Ok((ns, false))
}

fn parse_signed_offset(v: &[u8]) -> usize {
    if v.is_empty() || (v[0] != b'+' && v[0] != b'-') {
        return 0;
    }
    let mut i = 1;
    while i < v.len() && v[i].is_ascii_digit() {
        i += 1;
    }
    if i == 1 {
        return 0;
    }
    let n: i64 = std::str::from_utf8(&v[1..i])
        .ok()
        .and_then(|x| x.parse().ok())
        .unwrap_or(99);
    if n > 23 {
        return 0;
    }
    i
}

fn parse_time_zone(v: &[u8]) -> Option<usize> {
    if v.len() < 3 {
        return None;
    }
    if v.len() >= 4 && (&v[..4] == b"ChST" || &v[..4] == b"MeST") {
        return Some(4);
    }
    if &v[..3] == b"GMT" {
        let rest = &v[3..];
        let n = parse_signed_offset(rest);
        return Some(3 + n);
    }
    if v[0] == b'+' || v[0] == b'-' {
        let n = parse_signed_offset(v);
        return if n > 0 { Some(n) } else { None };
    }
    let mut n_upper = 0;
    while n_upper < 6 && n_upper < v.len() && v[n_upper].is_ascii_uppercase() {
        n_upper += 1;
    }
    match n_upper {
        0..=2 | 6 => None,
        5 => (v[4] == b'T').then_some(5),
        4 => (v[3] == b'T' || &v[..4] == b"WITA").then_some(4),
        _ => Some(3),
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in(m: i64, y: i64) -> i64 {
    match m {
        2 => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

const DAYS_BEFORE: [i64; 13] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];

struct ParseErr {
    layout_elem: Vec<u8>,
    value_elem: Vec<u8>,
    msg: String,
}

/// time.ParseInLocation(layout, value, Local).
fn parse(layout0: &[u8], value0: &[u8]) -> Result<GoTime, String> {
    let mk = |e: ParseErr| -> String {
        if e.msg.is_empty() {
            format!(
                "parsing time {} as {}: cannot parse {} as {}",
                printf::quote_str(value0),
                printf::quote_str(layout0),
                printf::quote_str(&e.value_elem),
                printf::quote_str(&e.layout_elem)
            )
        } else {
            format!("parsing time {}{}", printf::quote_str(value0), e.msg)
        }
    };
    let mut layout = layout0;
    let mut value = value0;
    let (mut year, mut month, mut day, mut yday) = (0i64, -1i64, -1i64, -1i64);
    let (mut hour, mut min, mut sec, mut nsec) = (0i64, 0i64, 0i64, 0i64);
    let mut am = false;
    let mut pm = false;
    let mut z_utc = false;
    let mut zone_offset: Option<i64> = None;
    let mut zone_name: Vec<u8> = Vec::new();
    loop {
        let (prefix, std, suffix) = next_std_chunk(layout);
        let stdstr = &layout[prefix.len()..layout.len() - suffix.len()];
        value = match skip(value, prefix) {
            Ok(v) => v,
            Err(()) => {
                return Err(mk(ParseErr {
                    layout_elem: prefix.to_vec(),
                    value_elem: value.to_vec(),
                    msg: String::new(),
                }));
            }
        };
        if std == Std::None {
            if !value.is_empty() {
                return Err(mk(ParseErr {
                    layout_elem: Vec::new(),
                    value_elem: value.to_vec(),
                    msg: format!(": extra text: {}", printf::quote_str(value)),
                }));
            }
            break;
        }
        layout = suffix;
        let hold = value;
        let mut range_err = "";
        let r: Result<(), ()> = (|| {
            match std {
                Std::Year => {
                    if value.len() < 2 {
                        return Err(());
                    }
                    let p = &value[..2];
                    value = &value[2..];
                    if !p.iter().all(|c| c.is_ascii_digit()) {
                        return Err(());
                    }
                    year = ((p[0] - b'0') * 10 + (p[1] - b'0')) as i64;
                    year += if year >= 69 { 1900 } else { 2000 };
                }
                Std::LongYear => {
                    if value.len() < 4 || !is_digit(value, 0) {
                        return Err(());
                    }
                    let p = &value[..4];
                    value = &value[4..];
                    if !p.iter().all(|c| c.is_ascii_digit()) {
                        return Err(());
                    }
                    year = std::str::from_utf8(p)
                        .ok()
                        .and_then(|x| x.parse().ok())
                        .ok_or(())?;
                }
                Std::Month | Std::LongMonth => {
                    let (m, v) = lookup(&LONG_MONTHS, value, std == Std::Month)?;
                    month = m as i64 + 1;
                    value = v;
                }
                Std::NumMonth | Std::ZeroMonth => {
                    let (m, v) = getnum(value, std == Std::ZeroMonth)?;
                    month = m;
                    value = v;
                    if !(1..=12).contains(&month) {
                        range_err = "month";
                    }
                }
                Std::WeekDay | Std::LongWeekDay => {
                    let (_, v) = lookup(&LONG_DAYS, value, std == Std::WeekDay)?;
                    value = v;
                }
                Std::Day | Std::UnderDay | Std::ZeroDay => {
                    if std == Std::UnderDay && value.first() == Some(&b' ') {
                        value = &value[1..];
                    }
                    let (d, v) = getnum(value, std == Std::ZeroDay)?;
                    day = d;
                    value = v;
                }
                Std::UnderYearDay | Std::ZeroYearDay => {
                    for _ in 0..2 {
                        if std == Std::UnderYearDay && value.first() == Some(&b' ') {
                            value = &value[1..];
                        }
                    }
                    let (d, v) = getnum3(value, std == Std::ZeroYearDay)?;
                    yday = d;
                    value = v;
                }
                Std::Hour => {
                    let (h, v) = getnum(value, false)?;
                    hour = h;
                    value = v;
                    if !(0..24).contains(&hour) {
                        range_err = "hour";
                    }
                }
                Std::Hour12 | Std::ZeroHour12 => {
                    let (h, v) = getnum(value, std == Std::ZeroHour12)?;
                    hour = h;
                    value = v;
                    if !(0..=12).contains(&hour) {
                        range_err = "hour";
                    }
                }
                Std::Minute | Std::ZeroMinute => {
                    let (m, v) = getnum(value, std == Std::ZeroMinute)?;
                    min = m;
                    value = v;
                    if !(0..60).contains(&min) {
                        range_err = "minute";
                    }
                }
                Std::Second | Std::ZeroSecond => {
                    let (s2, v) = getnum(value, std == Std::ZeroSecond)?;
                    sec = s2;
                    value = v;
                    if !(0..60).contains(&sec) {
                        range_err = "second";
                        return Ok(());
                    }
                    if value.len() >= 2
                        && (value[0] == b'.' || value[0] == b',')
                        && is_digit(value, 1)
                    {
                        let (_, nstd, _) = next_std_chunk(layout);
                        if matches!(nstd, Std::Frac0(..) | Std::Frac9(..)) {
                            return Ok(());
                        }
                        let mut n = 2;
                        while n < value.len() && is_digit(value, n) {
                            n += 1;
                        }
                        nsec = parse_nanoseconds(value, n)?.0;
                        value = &value[n..];
                    }
                }
                Std::PM | Std::Pm => {
                    if value.len() < 2 {
                        return Err(());
                    }
                    let p = &value[..2];
                    value = &value[2..];
                    let (a, b) = if std == Std::PM {
                        (b"AM", b"PM")
                    } else {
                        (b"am", b"pm")
                    };
                    if p == b {
                        pm = true;
                    } else if p == a {
                        am = true;
                    } else {
                        return Err(());
                    }
                }
                Std::TZ => {
                    if value.len() >= 3 && &value[..3] == b"UTC" {
                        z_utc = true;
                        value = &value[3..];
                        return Ok(());
                    }
                    let n = parse_time_zone(value).ok_or(())?;
                    zone_name = value[..n].to_vec();
                    value = &value[n..];
                }
                Std::Frac0(n, _) => {
                    let nd = 1 + n;
                    if value.len() < nd {
                        return Err(());
                    }
                    nsec = parse_nanoseconds(value, nd)?.0;
                    value = &value[nd..];
                }
                Std::Frac9(..) => {
                    if value.len() < 2
                        || !(value[0] == b'.' || value[0] == b',')
                        || !value[1].is_ascii_digit()
                    {
                        return Ok(());
                    }
                    let mut i = 0;
                    while i + 1 < value.len() && value[i + 1].is_ascii_digit() {
                        i += 1;
                    }
                    nsec = parse_nanoseconds(value, 1 + i)?.0;
                    value = &value[1 + i..];
                }
                Std::None => {}
                tz => {
                    let iso = matches!(
                        tz,
                        Std::Iso8601TZ
                            | Std::Iso8601ShortTZ
                            | Std::Iso8601ColonTZ
                            | Std::Iso8601SecondsTZ
                            | Std::Iso8601ColonSecondsTZ
                    );
                    if iso && value.first() == Some(&b'Z') {
                        value = &value[1..];
                        z_utc = true;
                        return Ok(());
                    }
                    let (sign, h, m, sc): (u8, &[u8], &[u8], &[u8]);
                    if matches!(tz, Std::Iso8601ColonTZ | Std::NumColonTZ) {
                        if value.len() < 6 || value[3] != b':' {
                            return Err(());
                        }
                        (sign, h, m, sc) = (value[0], &value[1..3], &value[4..6], b"00");
                        value = &value[6..];
                    } else if matches!(tz, Std::NumShortTZ | Std::Iso8601ShortTZ) {
                        if value.len() < 3 {
                            return Err(());
                        }
                        (sign, h, m, sc) = (value[0], &value[1..3], b"00", b"00");
                        value = &value[3..];
                    } else if matches!(tz, Std::Iso8601ColonSecondsTZ | Std::NumColonSecondsTZ) {
                        if value.len() < 9 || value[3] != b':' || value[6] != b':' {
                            return Err(());
                        }
                        (sign, h, m, sc) = (value[0], &value[1..3], &value[4..6], &value[7..9]);
                        value = &value[9..];
                    } else if matches!(tz, Std::Iso8601SecondsTZ | Std::NumSecondsTz) {
                        if value.len() < 7 {
                            return Err(());
                        }
                        (sign, h, m, sc) = (value[0], &value[1..3], &value[3..5], &value[5..7]);
                        value = &value[7..];
                    } else {
                        if value.len() < 5 {
                            return Err(());
                        }
                        (sign, h, m, sc) = (value[0], &value[1..3], &value[3..5], b"00");
                        value = &value[5..];
                    }
                    let hr = getnum(h, true)?.0;
                    let mm = getnum(m, true)?.0;
                    let ss = getnum(sc, true)?.0;
                    if hr > 24 {
                        range_err = "time zone offset hour";
                    }
                    if mm > 60 {
                        range_err = "time zone offset minute";
                    }
                    if ss > 60 {
                        range_err = "time zone offset second";
                    }
                    let mut off = (hr * 60 + mm) * 60 + ss;
                    match sign {
                        b'+' => {}
                        b'-' => off = -off,
                        _ => return Err(()),
                    }
                    zone_offset = Some(off);
                }
            }
            Ok(())
        })();
        if !range_err.is_empty() {
            return Err(mk(ParseErr {
                layout_elem: stdstr.to_vec(),
                value_elem: value.to_vec(),
                msg: format!(": {range_err} out of range"),
            }));
        }
        if r.is_err() {
            return Err(mk(ParseErr {
                layout_elem: stdstr.to_vec(),
                value_elem: hold.to_vec(),
                msg: String::new(),
            }));
        }
    }
    if pm && hour < 12 {
        hour += 12;
    } else if am && hour == 12 {
        hour = 0;
    }
    if yday >= 0 {
        let mut d = 0;
        let mut m = 0;
        let mut yd = yday;
        if is_leap(year) {
            if yd == 31 + 29 {
                m = 2;
                d = 29;
            } else if yd > 31 + 29 {
                yd -= 1;
            }
        }
        if !(1..=365).contains(&yd) {
            return Err(mk(ParseErr {
                layout_elem: Vec::new(),
                value_elem: value.to_vec(),
                msg: ": day-of-year out of range".into(),
            }));
        }
        if m == 0 {
            m = (yd - 1) / 31 + 1;
            if DAYS_BEFORE[m as usize] < yd {
                m += 1;
            }
            d = yd - DAYS_BEFORE[(m - 1) as usize];
        }
        if month >= 0 && month != m {
            return Err(mk(ParseErr {
                layout_elem: Vec::new(),
                value_elem: value.to_vec(),
                msg: ": day-of-year does not match month".into(),
            }));
        }
        month = m;
        if day >= 0 && day != d {
            return Err(mk(ParseErr {
                layout_elem: Vec::new(),
                value_elem: value.to_vec(),
                msg: ": day-of-year does not match day".into(),
            }));
        }
        day = d;
    } else {
        if month < 0 {
            month = 1;
        }
        if day < 0 {
            day = 1;
        }
    }
    if day < 1 || day > days_in(month, year) {
        return Err(mk(ParseErr {
            layout_elem: Vec::new(),
            value_elem: value.to_vec(),
            msg: ": day out of range".into(),
        }));
    }
    let dt = civil::DateTime::new(
        year as i16,
        month as i8,
        day as i8,
        hour as i8,
        min as i8,
        sec as i8,
        nsec as i32,
    )
    .map_err(|e| e.to_string())?;
    if z_utc {
        let ts = dt
            .to_zoned(TimeZone::UTC)
            .map_err(|e| e.to_string())?
            .timestamp();
        return Ok(utc_time(ts));
    }
    if let Some(off) = zone_offset {
        let base = dt
            .to_zoned(TimeZone::UTC)
            .map_err(|e| e.to_string())?
            .timestamp();
        let ts = base
            .checked_sub(jiff::SignedDuration::from_secs(off))
            .map_err(|e| e.to_string())?;
        let local = local_time(ts);
        let (loff, lname) = offset_info(&local);
        if loff as i64 == off && (zone_name.is_empty() || lname.as_bytes() == &zone_name[..]) {
            return Ok(local);
        }
        let o = jiff::tz::Offset::from_seconds(off as i32).map_err(|e| e.to_string())?;
        let name: Rc<str> = Rc::from(super::gostr::to_string_lossy(&zone_name).as_str());
        return Ok(GoTime {
            ts,
            tz: TimeZone::fixed(o),
            loc: name.clone(),
            mono: None,
            fixed_name: Some(name),
        });
    }
    if !zone_name.is_empty() {
        let base = dt
            .to_zoned(TimeZone::UTC)
            .map_err(|e| e.to_string())?
            .timestamp();
        let local = local_time(base);
        let (loff, lname) = offset_info(&local);
        if lname.as_bytes() == &zone_name[..] {
            let ts = base
                .checked_sub(jiff::SignedDuration::from_secs(loff as i64))
                .map_err(|e| e.to_string())?;
            return Ok(local_time(ts));
        }
        let mut off = 0i64;
        if zone_name.len() > 3 && &zone_name[..3] == b"GMT" {
            off = std::str::from_utf8(&zone_name[3..])
                .ok()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0)
                * 3600;
        }
        let o = jiff::tz::Offset::from_seconds(off as i32).map_err(|e| e.to_string())?;
        let name: Rc<str> = Rc::from(super::gostr::to_string_lossy(&zone_name).as_str());
        return Ok(GoTime {
            ts: base,
            tz: TimeZone::fixed(o),
            loc: name.clone(),
            mono: None,
            fixed_name: Some(name),
        });
    }
    let tz = local_tz();
    let ts = dt.to_zoned(tz).map_err(|e| e.to_string())?.timestamp();
    Ok(local_time(ts))
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
    super::gostr::to_string_lossy(&buf)
}

/// time.ParseDuration.
pub(super) fn parse_duration(s0: &[u8]) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", printf::quote_str(s0));
    let mut s = s0;
    let mut d: u64 = 0;
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let pl = s.len();
        let mut v: u64 = 0;
        let mut i = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            if v > (1u64 << 63) / 10 {
                return Err(invalid());
            }
            v = v * 10 + (s[i] - b'0') as u64;
            if v > 1 << 63 {
                return Err(invalid());
            }
            i += 1;
        }
        s = &s[i..];
        let pre = pl != s.len();
        let mut post = false;
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let pl = s.len();
            let mut overflow = false;
            let mut i = 0;
            while i < s.len() && s[i].is_ascii_digit() {
                if !overflow {
                    if f > ((1u64 << 63) - 1) / 10 {
                        overflow = true;
                    } else {
                        let y = f * 10 + (s[i] - b'0') as u64;
                        if y > 1 << 63 {
                            overflow = true;
                        } else {
                            f = y;
                            scale *= 10.0;
                        }
                    }
                }
                i += 1;
            }
            s = &s[i..];
            post = pl != s.len();
        }
        if !pre && !post {
            return Err(invalid());
        }
        let mut i = 0;
        while i < s.len() && !(s[i] == b'.' || s[i].is_ascii_digit()) {
            i += 1;
        }
        if i == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                printf::quote_str(s0)
            ));
        }
        let u = &s[..i];
        s = &s[i..];
        let unit: u64 = match u {
            b"ns" => 1,
            b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    printf::quote_str(u),
                    printf::quote_str(s0)
                ));
            }
        };
        if v > (1u64 << 63) / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > 1 << 63 {
                return Err(invalid());
            }
        }
        d += v;
        if d > 1 << 63 {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > (1u64 << 63) - 1 {
        return Err(invalid());
    }
    Ok(d as i64)
}

fn duration_round(d: i64, m: i64) -> i64 {
    if m <= 0 {
        return d;
    }
    let mut r = d % m;
    let less_than_half = |x: i64, y: i64| (x as u64).wrapping_add(x as u64) < y as u64;
    if d < 0 {
        r = -r;
        if less_than_half(r, m) {
            return d + r;
        }
        match (d - m).checked_add(r) {
            Some(d1) if d1 < d => d1,
            _ => i64::MIN,
        }
    } else {
        if less_than_half(r, m) {
            return d - r;
        }
        match (d + m - r).checked_sub(0) {
            Some(d1) if d1 > d => d1,
            _ => i64::MAX,
        }
    }
}

fn since(t: &GoTime) -> i64 {
    let n = Timestamp::now();
    let d = n.as_nanosecond() - t.ts.as_nanosecond();
    d.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

fn add_duration(t: &GoTime, d: i64) -> Result<GoTime, String> {
    let ts =
        t.ts.checked_add(jiff::SignedDuration::from_nanos(d))
            .map_err(|_| "time out of range".to_string())?;
    Ok(GoTime {
        ts,
        tz: t.tz.clone(),
        loc: t.loc.clone(),
        mono: t.mono.map(|m| m.wrapping_add(d)),
        fixed_name: t.fixed_name.clone(),
    })
}

// ---------------- sprig date functions ----------------

fn time_of(v: &Value) -> Result<GoTime, String> {
    Ok(match v {
        Value::Time(t) => (**t).clone(),
        Value::Int(n, IntT::Int | IntT::Int64 | IntT::Int32) => unix(*n)?,
        _ => now(),
    })
}

fn date_in_zone(fmt: &[u8], date: &Value, zone: &[u8]) -> FnResult {
    let t = time_of(date)?;
    let zone = super::gostr::to_string_lossy(zone);
    let (tz, loc) = load_location(&zone).unwrap_or((TimeZone::UTC, Rc::from("UTC")));
    let t = GoTime {
        ts: t.ts,
        tz,
        loc,
        mono: None,
        fixed_name: None,
    };
    Ok(Value::string(go_format(&t, fmt)))
}

fn ago(v: &Value) -> FnResult {
    let t = match v {
        Value::Time(t) => (**t).clone(),
        Value::Int(n, IntT::Int | IntT::Int64) => unix(*n)?,
        _ => now(),
    };
    let d = duration_round(since(&t), 1_000_000_000);
    Ok(Value::str(duration_string(d)))
}

fn duration_fn(v: &Value) -> FnResult {
    let n = match v {
        Value::Str(s) => super::strconv::parse_int(s, 10).unwrap_or(0),
        Value::Int(n, IntT::Int64) => *n,
        _ => 0,
    };
    Ok(Value::str(duration_string(n.wrapping_mul(1_000_000_000))))
}

fn duration_round_fn(v: &Value) -> FnResult {
    let d = match v {
        Value::Str(s) => parse_duration(s).unwrap_or(0),
        Value::Int(n, IntT::Int64) => *n,
        Value::Time(t) => since(t),
        _ => 0,
    };
    let mut u = d as u64;
    if d < 0 {
        u = u.wrapping_neg();
    }
    let hour: u64 = 3_600_000_000_000;
    let (year, month, day, minute, second) = (
        hour * 24 * 365,
        hour * 24 * 30,
        hour * 24,
        60_000_000_000u64,
        1_000_000_000u64,
    );
    let s = if u > year {
        format!("{}y", u / year)
    } else if u > month {
        format!("{}mo", u / month)
    } else if u > day {
        format!("{}d", u / day)
    } else if u > hour {
        format!("{}h", u / hour)
    } else if u > minute {
        format!("{}m", u / minute)
    } else if u > second {
        format!("{}s", u / second)
    } else {
        "0s".to_string()
    };
    Ok(Value::str(s))
}

fn time_val(t: GoTime) -> Value {
    Value::Time(Rc::new(t))
}

fn recv(a: &[Value]) -> Result<&GoTime, String> {
    match a.first() {
        Some(Value::Time(t)) => Ok(t),
        _ => Err("invalid receiver".into()),
    }
}

pub(super) static FUNCS: &[FuncDef] = &[
    def!("now", [], |_, _| Ok(time_val(now()))),
    def!("date", [Str, Any], |_, a| date_in_zone(
        s(&a[0]),
        &a[1],
        b"Local"
    )),
    def!("dateInZone", [Str, Any, Str], |_, a| date_in_zone(
        s(&a[0]),
        &a[1],
        s(&a[2])
    )),
    def!("date_in_zone", [Str, Any, Str], |_, a| date_in_zone(
        s(&a[0]),
        &a[1],
        s(&a[2])
    )),
    def!("htmlDate", [Any], |_, a| date_in_zone(
        b"2006-01-02",
        &a[0],
        b"Local"
    )),
    def!("htmlDateInZone", [Any, Str], |_, a| date_in_zone(
        b"2006-01-02",
        &a[0],
        s(&a[1])
    )),
    def!("toDate", [Str, Str], |_, a| Ok(time_val(
        parse(s(&a[0]), s(&a[1])).unwrap_or_else(|_| zero_time())
    ))),
    def!("mustToDate", [Str, Str], |_, a| parse(s(&a[0]), s(&a[1]))
        .map(time_val)),
    def!("unixEpoch", [Time], |_, a| {
        let t = recv(&a)?;
        Ok(Value::str(t.ts.as_second().to_string()))
    }),
    def!("dateModify", [Str, Time], |_, a| {
        let t = match &a[1] {
            Value::Time(t) => (**t).clone(),
            _ => zero_time(),
        };
        match parse_duration(s(&a[0])) {
            Ok(d) => add_duration(&t, d).map(time_val),
            Err(_) => Ok(time_val(t)),
        }
    }),
    def!("date_modify", [Str, Time], |_, a| {
        let t = match &a[1] {
            Value::Time(t) => (**t).clone(),
            _ => zero_time(),
        };
        match parse_duration(s(&a[0])) {
            Ok(d) => add_duration(&t, d).map(time_val),
            Err(_) => Ok(time_val(t)),
        }
    }),
    def!("mustDateModify", [Str, Time], |_, a| {
        let t = match &a[1] {
            Value::Time(t) => (**t).clone(),
            _ => zero_time(),
        };
        let d = parse_duration(s(&a[0]))?;
        add_duration(&t, d).map(time_val)
    }),
    def!("must_date_modify", [Str, Time], |_, a| {
        let t = match &a[1] {
            Value::Time(t) => (**t).clone(),
            _ => zero_time(),
        };
        let d = parse_duration(s(&a[0]))?;
        add_duration(&t, d).map(time_val)
    }),
    def!("ago", [Any], |_, a| ago(&a[0])),
    def!("duration", [Any], |_, a| duration_fn(&a[0])),
    def!("durationRound", [Any], |_, a| duration_round_fn(&a[0])),
];

// ---------------- methods ----------------

fn civil_of(t: &GoTime) -> civil::DateTime {
    t.ts.to_zoned(t.tz.clone()).datetime()
}

static TIME_METHODS: &[FuncDef] = &[
    def!("Unix", [], |_, a| Ok(Value::int64(
        recv(&a)?.ts.as_second()
    ))),
    def!("UnixMilli", [], |_, a| Ok(Value::int64(
        recv(&a)?.ts.as_millisecond()
    ))),
    def!("UnixMicro", [], |_, a| Ok(Value::int64(
        recv(&a)?.ts.as_microsecond()
    ))),
    def!("UnixNano", [], |_, a| Ok(Value::int64(
        recv(&a)?.ts.as_nanosecond() as i64
    ))),
    def!("Year", [], |_, a| Ok(Value::int(
        civil_of(recv(&a)?).year() as i64
    ))),
    def!("Month", [], |_, a| Ok(Value::Int(
        civil_of(recv(&a)?).month() as i64,
        IntT::Month
    ))),
    def!("Day", [], |_, a| Ok(Value::int(
        civil_of(recv(&a)?).day() as i64
    ))),
    def!("Hour", [], |_, a| Ok(Value::int(
        civil_of(recv(&a)?).hour() as i64
    ))),
    def!("Minute", [], |_, a| Ok(Value::int(
        civil_of(recv(&a)?).minute() as i64
    ))),
    def!("Second", [], |_, a| Ok(Value::int(
        civil_of(recv(&a)?).second() as i64
    ))),
    def!("Nanosecond", [], |_, a| Ok(Value::int(
        civil_of(recv(&a)?).subsec_nanosecond() as i64
    ))),
    def!("YearDay", [], |_, a| Ok(Value::int(
        civil_of(recv(&a)?).day_of_year() as i64
    ))),
    def!("Weekday", [], |_, a| Ok(Value::Int(
        civil_of(recv(&a)?).weekday().to_sunday_zero_offset() as i64,
        IntT::Weekday
    ))),
    def!("Format", [Str], |_, a| Ok(Value::string(go_format(
        recv(&a)?,
        s(&a[1])
    )))),
    def!("String", [], |_, a| Ok(Value::str(time_string(recv(&a)?)))),
    def!("UTC", [], |_, a| Ok(time_val(utc_time(recv(&a)?.ts)))),
    def!("Local", [], |_, a| Ok(time_val(local_time(recv(&a)?.ts)))),
    def!("IsZero", [], |_, a| Ok(Value::Bool(
        recv(&a)?.ts.as_second() == -62_135_596_800 && recv(&a)?.ts.subsec_nanosecond() == 0
    ))),
];

pub(super) fn time_method(name: &str) -> Option<&'static FuncDef> {
    TIME_METHODS.iter().find(|f| f.name == name)
}

fn dur(a: &[Value]) -> i64 {
    i(&a[0])
}

static DURATION_METHODS: &[FuncDef] = &[
    def!("String", [], |_, a| Ok(Value::str(duration_string(dur(
        &a
    ))))),
    def!("Nanoseconds", [], |_, a| Ok(Value::int64(dur(&a)))),
    def!("Microseconds", [], |_, a| Ok(Value::int64(dur(&a) / 1_000))),
    def!("Milliseconds", [], |_, a| Ok(Value::int64(
        dur(&a) / 1_000_000
    ))),
    def!("Seconds", [], |_, a| {
        let d = dur(&a);
        let (sec, nsec) = (d / 1_000_000_000, d % 1_000_000_000);
        Ok(Value::Float(sec as f64 + nsec as f64 / 1e9))
    }),
    def!("Minutes", [], |_, a| {
        let d = dur(&a);
        let (m, nsec) = (d / 60_000_000_000, d % 60_000_000_000);
        Ok(Value::Float(m as f64 + nsec as f64 / 60e9))
    }),
    def!("Hours", [], |_, a| {
        let d = dur(&a);
        let (h, nsec) = (d / 3_600_000_000_000, d % 3_600_000_000_000);
        Ok(Value::Float(h as f64 + nsec as f64 / 3600e9))
    }),
];

static NAMED_STRING_METHODS: &[FuncDef] = &[def!("String", [], |_, a| match &a[0] {
    Value::Int(m, IntT::Month) => Ok(Value::str(month_name(*m))),
    Value::Int(d, IntT::Weekday) => Ok(Value::str(weekday_name(*d))),
    _ => Err("invalid receiver".into()),
})];

pub(super) fn int_method(v: &Value, name: &str) -> Option<&'static FuncDef> {
    match v {
        Value::Int(_, IntT::Duration) => DURATION_METHODS.iter().find(|f| f.name == name),
        Value::Int(_, IntT::Month | IntT::Weekday) => {
            NAMED_STRING_METHODS.iter().find(|f| f.name == name)
        }
        _ => None,
    }
}

#[allow(dead_code)]
fn _use(c: &mut Ctx<'_>) {
    let _ = c;
}
