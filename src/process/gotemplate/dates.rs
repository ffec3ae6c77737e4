//! Every date/time function of the template function map, in one place:
//! sprig's now/date/dateInZone/htmlDate/toDate/unixEpoch/dateModify/ago/
//! duration/durationRound, time.Time / time.Duration / time.Month methods.
//! Instants, locations, Go layouts (formatting and parsing) are the
//! plugin's `gotime`, durations are parsed by its `goduration`; printing a
//! time or duration is `timefmt`'s.
//!
//! Go's `Local` is UTC, named "Local", as `gotime` takes it (the plugin runs
//! in a container without /etc/localtime).

use std::sync::OnceLock;

use super::super::goduration;
use super::super::gotime::{self, Location};
use super::func::{FnResult, FuncDef, PT, i, s};
use super::strconv;
use super::timefmt::{duration_string, go_format, month_name, time_string, weekday_name};
use super::value::{GoTime, IntT, Value};

macro_rules! def {
    ($name:expr, [$($p:ident),*], $imp:expr) => {
        FuncDef { name: $name, params: &[$(PT::$p),*], variadic: None, imp: $imp, builtin: false }
    };
}

// ---------------- instants and locations ----------------

fn local() -> Location {
    static LOCAL: OnceLock<Location> = OnceLock::new();
    LOCAL
        .get_or_init(|| Location::load("Local").unwrap_or_else(|_| Location::utc()))
        .clone()
}

fn in_loc(t: gotime::GoTime, loc: Location) -> GoTime {
    GoTime { t, loc, mono: None }
}

/// time.Time{}: January 1, year 1, 00:00:00 UTC.
fn zero_time() -> GoTime {
    in_loc(
        gotime::GoTime::from_unix(-62_135_596_800, 0),
        Location::utc(),
    )
}

fn process_start() -> std::time::Instant {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    *START.get_or_init(std::time::Instant::now)
}

fn wall_now() -> gotime::GoTime {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    gotime::GoTime::from_unix(since.as_secs() as i64, i64::from(since.subsec_nanos()))
}

/// time.Now() (with a monotonic reading relative to process start).
pub(super) fn now() -> GoTime {
    let mono = process_start().elapsed().as_nanos() as i64 + 1;
    GoTime {
        t: wall_now(),
        loc: local(),
        mono: Some(mono),
    }
}

/// time.Unix(sec, 0).
fn unix(sec: i64) -> GoTime {
    in_loc(gotime::GoTime::from_unix(sec, 0), local())
}

/// time.ParseInLocation(layout, value, Local).
fn parse(layout: &[u8], value: &[u8]) -> Result<GoTime, String> {
    let (t, loc) = gotime::parse_in_location(layout, value, &local())?;
    Ok(in_loc(t, loc))
}

// ---------------- durations ----------------

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

/// time.Since(t): by the monotonic clock when t has a reading (from
/// now()), else by the wall clock, saturating.
fn since(t: &GoTime) -> i64 {
    let n = now();
    if let (Some(a), Some(b)) = (n.mono, t.mono) {
        return a
            .checked_sub(b)
            .unwrap_or(if a > b { i64::MAX } else { i64::MIN });
    }
    let ns = |t: &gotime::GoTime| {
        i128::from(t.unix_seconds()) * 1_000_000_000 + i128::from(t.subsec_nanos())
    };
    (ns(&n.t) - ns(&t.t)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Seconds from Go's wall-clock epoch (1885) to the Unix epoch: a time
/// keeps its monotonic reading only within 2^33 seconds of 1885.
const WALL_TO_UNIX: i64 = 2_682_288_000;

/// t.Add(d).
fn add_duration(t: &GoTime, d: i64) -> GoTime {
    let moved = t.t.add_nanos(d);
    let wall_sec = moved.unix_seconds().wrapping_add(WALL_TO_UNIX);
    let mono = t
        .mono
        .filter(|_| (0..1i64 << 33).contains(&wall_sec))
        .and_then(|m| m.checked_add(d));
    GoTime {
        t: moved,
        loc: t.loc.clone(),
        mono,
    }
}

// ---------------- sprig date functions ----------------

fn time_of(v: &Value) -> GoTime {
    match v {
        Value::Time(t) => (**t).clone(),
        Value::Int(n, IntT::Int | IntT::Int64 | IntT::Int32) => unix(*n),
        _ => now(),
    }
}

/// sprig's dateInZone: t.In(LoadLocation(zone) or UTC).Format(fmt).
fn date_in_zone(fmt: &[u8], date: &Value, zone: &[u8]) -> FnResult {
    let t = time_of(date);
    let loc = match std::str::from_utf8(zone) {
        Ok("Local") => local(),
        Ok(name) => Location::load(name).unwrap_or_else(|_| Location::utc()),
        Err(_) => Location::utc(),
    };
    Ok(Value::string(go_format(&in_loc(t.t, loc), fmt)))
}

fn ago(v: &Value) -> FnResult {
    let t = match v {
        Value::Time(t) => (**t).clone(),
        Value::Int(n, IntT::Int | IntT::Int64) => unix(*n),
        _ => now(),
    };
    let d = duration_round(since(&t), 1_000_000_000);
    Ok(Value::str(duration_string(d)))
}

fn duration_fn(v: &Value) -> FnResult {
    let n = match v {
        Value::Str(s) => strconv::parse_int(s, 10).unwrap_or(0),
        Value::Int(n, IntT::Int64) => *n,
        _ => 0,
    };
    Ok(Value::str(duration_string(n.wrapping_mul(1_000_000_000))))
}

fn duration_round_fn(v: &Value) -> FnResult {
    let d = match v {
        Value::Str(s) => goduration::parse_bytes(s).unwrap_or(0),
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
    Value::Time(std::rc::Rc::new(t))
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
        Ok(Value::str(t.t.unix_seconds().to_string()))
    }),
    def!("dateModify", [Str, Time], |_, a| {
        let t = match &a[1] {
            Value::Time(t) => (**t).clone(),
            _ => zero_time(),
        };
        match goduration::parse_bytes(s(&a[0])) {
            Ok(d) => Ok(time_val(add_duration(&t, d))),
            Err(_) => Ok(time_val(t)),
        }
    }),
    def!("date_modify", [Str, Time], |_, a| {
        let t = match &a[1] {
            Value::Time(t) => (**t).clone(),
            _ => zero_time(),
        };
        match goduration::parse_bytes(s(&a[0])) {
            Ok(d) => Ok(time_val(add_duration(&t, d))),
            Err(_) => Ok(time_val(t)),
        }
    }),
    def!("mustDateModify", [Str, Time], |_, a| {
        let t = match &a[1] {
            Value::Time(t) => (**t).clone(),
            _ => zero_time(),
        };
        let d = goduration::parse_bytes(s(&a[0]))?;
        Ok(time_val(add_duration(&t, d)))
    }),
    def!("must_date_modify", [Str, Time], |_, a| {
        let t = match &a[1] {
            Value::Time(t) => (**t).clone(),
            _ => zero_time(),
        };
        let d = goduration::parse_bytes(s(&a[0]))?;
        Ok(time_val(add_duration(&t, d)))
    }),
    def!("ago", [Any], |_, a| ago(&a[0])),
    def!("duration", [Any], |_, a| duration_fn(&a[0])),
    def!("durationRound", [Any], |_, a| duration_round_fn(&a[0])),
];

// ---------------- methods ----------------

fn civil_of(t: &GoTime) -> gotime::Civil {
    t.t.civil(&t.loc).0
}

/// t.Unix()*scale + t.Nanosecond()/(1e9/scale), wrapping as Go does.
fn unix_scaled(t: &GoTime, scale: i64) -> i64 {
    t.t.unix_seconds()
        .wrapping_mul(scale)
        .wrapping_add(i64::from(t.t.subsec_nanos()) / (1_000_000_000 / scale))
}

static TIME_METHODS: &[FuncDef] = &[
    def!("Unix", [], |_, a| Ok(Value::int64(
        recv(&a)?.t.unix_seconds()
    ))),
    def!("UnixMilli", [], |_, a| Ok(Value::int64(unix_scaled(
        recv(&a)?,
        1_000
    )))),
    def!("UnixMicro", [], |_, a| Ok(Value::int64(unix_scaled(
        recv(&a)?,
        1_000_000
    )))),
    def!("UnixNano", [], |_, a| Ok(Value::int64(unix_scaled(
        recv(&a)?,
        1_000_000_000
    )))),
    def!("Year", [], |_, a| Ok(Value::int(civil_of(recv(&a)?).year))),
    def!("Month", [], |_, a| Ok(Value::Int(
        civil_of(recv(&a)?).month,
        IntT::Month
    ))),
    def!("Day", [], |_, a| Ok(Value::int(civil_of(recv(&a)?).day))),
    def!("Hour", [], |_, a| Ok(Value::int(civil_of(recv(&a)?).hour))),
    def!("Minute", [], |_, a| Ok(Value::int(
        civil_of(recv(&a)?).minute
    ))),
    def!("Second", [], |_, a| Ok(Value::int(
        civil_of(recv(&a)?).second
    ))),
    def!("Nanosecond", [], |_, a| Ok(Value::int(i64::from(
        recv(&a)?.t.subsec_nanos()
    )))),
    def!("YearDay", [], |_, a| Ok(Value::int(
        civil_of(recv(&a)?).yday
    ))),
    def!("Weekday", [], |_, a| Ok(Value::Int(
        civil_of(recv(&a)?).weekday,
        IntT::Weekday
    ))),
    def!("Format", [Str], |_, a| Ok(Value::string(go_format(
        recv(&a)?,
        s(&a[1])
    )))),
    def!("String", [], |_, a| Ok(Value::str(time_string(recv(&a)?)))),
    def!("UTC", [], |_, a| Ok(time_val(in_loc(
        recv(&a)?.t,
        Location::utc()
    )))),
    def!("Local", [], |_, a| Ok(time_val(in_loc(
        recv(&a)?.t,
        local()
    )))),
    def!("IsZero", [], |_, a| {
        let t = recv(&a)?.t;
        Ok(Value::Bool(
            t.unix_seconds() == -62_135_596_800 && t.subsec_nanos() == 0,
        ))
    }),
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
