//! Go's `time.parse` (behind `time.Parse` and `time.ParseInLocation`), ported line by line.
//! Works on bytes like Go; linear in the lengths of the layout and the value.

use super::civil::{DAYS_BEFORE, GoTime, days_in, is_leap};
use super::format::{LONG_DAY_NAMES, LONG_MONTH_NAMES, SHORT_DAY_NAMES, SHORT_MONTH_NAMES};
use super::layout::*;
use super::located::date;
use super::zone::Zl;

/// A parsed time: the instant and the location Go attaches to it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Parsed<'a> {
    pub t: GoTime,
    pub loc: Zl<'a>,
}

/// Go's `quote` (ASCII-escaping), bounded so that errors stay small for huge inputs.
fn quote(s: &[u8]) -> String {
    const MAX: usize = 64;
    let mut out = String::from("\"");
    for &c in s.iter().take(MAX) {
        match c {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    if s.len() > MAX {
        out.push_str("...");
    }
    out.push('"');
    out
}

fn parse_error(
    layout: &[u8],
    value: &[u8],
    layout_elem: &[u8],
    value_elem: &[u8],
    msg: &str,
) -> String {
    if msg.is_empty() {
        format!(
            "parsing time {} as {}: cannot parse {} as {}",
            quote(value),
            quote(layout),
            quote(value_elem),
            quote(layout_elem)
        )
    } else {
        format!("parsing time {}{}", quote(value), msg)
    }
}

fn is_digit(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

fn comma_or_period(b: u8) -> bool {
    b == b'.' || b == b','
}

/// Go's `leadingInt`: the leading [0-9]* as u64 (error on overflow past 1<<63).
fn leading_int(s: &[u8]) -> Result<(u64, &[u8]), ()> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if !c.is_ascii_digit() {
            break;
        }
        if x > (1u64 << 63) / 10 {
            return Err(());
        }
        x = x * 10 + u64::from(c - b'0');
        if x > 1u64 << 63 {
            return Err(());
        }
        i += 1;
    }
    Ok((x, &s[i..]))
}

/// Go's `atoi` from package time: optional sign, then digits (none at all means 0).
pub(crate) fn atoi(s: &[u8]) -> Option<i64> {
    let mut s = s;
    let mut neg = false;
    if let Some(&c) = s.first() {
        if c == b'-' || c == b'+' {
            neg = c == b'-';
            s = &s[1..];
        }
    }
    let (q, rem) = leading_int(s).ok()?;
    if !rem.is_empty() {
        return None;
    }
    let x = q as i64;
    Some(if neg { x.wrapping_neg() } else { x })
}

/// Go's `getnum`: one or two digits (`fixed`: exactly two).
fn getnum(s: &[u8], fixed: bool) -> Option<(i64, &[u8])> {
    if !is_digit(s, 0) {
        return None;
    }
    if !is_digit(s, 1) {
        if fixed {
            return None;
        }
        return Some((i64::from(s[0] - b'0'), &s[1..]));
    }
    Some((
        i64::from(s[0] - b'0') * 10 + i64::from(s[1] - b'0'),
        &s[2..],
    ))
}

/// Go's `getnum3`: one to three digits (`fixed`: exactly three).
fn getnum3(s: &[u8], fixed: bool) -> Option<(i64, &[u8])> {
    let mut n = 0i64;
    let mut i = 0;
    while i < 3 && is_digit(s, i) {
        n = n * 10 + i64::from(s[i] - b'0');
        i += 1;
    }
    if i == 0 || (fixed && i != 3) {
        return None;
    }
    Some((n, &s[i..]))
}

fn cutspace(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b' ').count();
    &s[n..]
}

/// Go's `skip`: removes `prefix` from `value`, a run of spaces matching a run of spaces.
fn skip<'v>(value: &'v [u8], prefix: &[u8]) -> Result<&'v [u8], &'v [u8]> {
    let (mut value, mut prefix) = (value, prefix);
    while !prefix.is_empty() {
        if prefix[0] == b' ' {
            if !value.is_empty() && value[0] != b' ' {
                return Err(value);
            }
            prefix = cutspace(prefix);
            value = cutspace(value);
            continue;
        }
        if value.is_empty() || value[0] != prefix[0] {
            return Err(value);
        }
        prefix = &prefix[1..];
        value = &value[1..];
    }
    Ok(value)
}

/// Go's `match`: ASCII case-insensitive equality of equal-length strings.
fn match_ci(s1: &[u8], s2: &[u8]) -> bool {
    for (&c1, &c2) in s1.iter().zip(s2) {
        if c1 != c2 {
            let (c1, c2) = (c1 | 0x20, c2 | 0x20);
            if c1 != c2 || !c1.is_ascii_lowercase() {
                return false;
            }
        }
    }
    true
}

/// Go's `lookup`: index of the first table entry that prefixes `val` (case-insensitively).
fn lookup<'v>(tab: &[&str], val: &'v [u8]) -> Option<(i64, &'v [u8])> {
    for (i, v) in tab.iter().enumerate() {
        let v = v.as_bytes();
        if val.len() >= v.len() && match_ci(&val[..v.len()], v) {
            return Some((i as i64, &val[v.len()..]));
        }
    }
    None
}

/// Go's `parseNanoseconds`: (ns, range error).
fn parse_nanoseconds(value: &[u8], nbytes: usize) -> Result<(i64, bool), ()> {
    if value.is_empty() || !comma_or_period(value[0]) {
        return Err(());
    }
    let nbytes = nbytes.min(10).min(value.len());
    let ns = atoi(&value[1..nbytes]).ok_or(())?;
    if ns < 0 {
        return Ok((ns, true));
    }
    let mut ns = ns;
    for _ in 0..(10 - nbytes) {
        ns = ns.wrapping_mul(10);
    }
    Ok((ns, false))
}

/// Go's `parseSignedOffset`: length of a "+hh"/"-h" offset (hours <= 23), 0 if none.
fn parse_signed_offset(value: &[u8]) -> usize {
    let Some(&sign) = value.first() else {
        return 0;
    };
    if sign != b'-' && sign != b'+' {
        return 0;
    }
    match leading_int(&value[1..]) {
        Ok((x, rem)) => {
            if rem.len() == value.len() - 1 || x > 23 {
                return 0;
            }
            value.len() - rem.len()
        }
        Err(()) => 0,
    }
}

/// Go's `parseTimeZone`.
fn parse_time_zone(value: &[u8]) -> Option<usize> {
    if value.len() < 3 {
        return None;
    }
    if value.len() >= 4 && (&value[..4] == b"ChST" || &value[..4] == b"MeST") {
        return Some(4);
    }
    if &value[..3] == b"GMT" {
        let rest = &value[3..];
        if rest.is_empty() {
            return Some(3);
        }
        return Some(3 + parse_signed_offset(rest));
    }
    if value[0] == b'+' || value[0] == b'-' {
        let n = parse_signed_offset(value);
        return (n > 0).then_some(n);
    }
    let mut n_upper = 0;
    while n_upper < 6 {
        if n_upper >= value.len() || !value[n_upper].is_ascii_uppercase() {
            break;
        }
        n_upper += 1;
    }
    match n_upper {
        5 if value[4] == b'T' => Some(5),
        4 if value[3] == b'T' || &value[..4] == b"WITA" => Some(4),
        3 => Some(3),
        _ => None,
    }
}

fn ascii(s: &[u8]) -> &str {
    // Zone names found by parse_time_zone are ASCII.
    std::str::from_utf8(s).unwrap_or("")
}

/// A numeric zone offset cut out of a value: (sign, hours, minutes, seconds, rest).
type OffsetParts<'v> = (u8, &'v [u8], &'v [u8], &'v [u8], &'v [u8]);

/// Go's `parse(layout, value, defaultLocation, local)`.
pub(crate) fn parse<'a>(
    layout: &Layout,
    value_all: &'a [u8],
    default_loc: Zl<'a>,
    local: Zl<'a>,
) -> Result<Parsed<'a>, String> {
    let alayout: &[u8] = &layout.text;
    let mut value: &'a [u8] = value_all;
    let mut am_set = false;
    let mut pm_set = false;

    let mut year: i64 = 0;
    let mut month: i64 = -1;
    let mut day: i64 = -1;
    let mut yday: i64 = -1;
    let mut hour: i64 = 0;
    let mut min: i64 = 0;
    let mut sec: i64 = 0;
    let mut nsec: i64 = 0;
    let mut z_utc = false;
    let mut zone_offset: i64 = -1;
    let mut zone_name: &'a [u8] = b"";

    let chunks = &layout.chunks;
    for (ci, chunk) in chunks.iter().enumerate() {
        let (prefix, stdstr) = layout.parts(ci);
        value = match skip(value, prefix) {
            Ok(v) => v,
            Err(v) => return Err(parse_error(alayout, value_all, prefix, v, "")),
        };
        let std = chunk.std;
        if std == 0 {
            if !value.is_empty() {
                return Err(parse_error(
                    alayout,
                    value_all,
                    b"",
                    value,
                    &format!(": extra text: {}", quote(value)),
                ));
            }
            break;
        }
        let hold = value;
        let mut range_err: Option<&str> = None;
        let mut err = false;
        match std & STD_MASK {
            STD_YEAR => {
                if value.len() < 2 {
                    err = true;
                } else {
                    let p = &value[..2];
                    value = &value[2..];
                    match atoi(p) {
                        Some(y) => year = if y >= 69 { y + 1900 } else { y + 2000 },
                        None => err = true,
                    }
                }
            }
            STD_LONG_YEAR => {
                if value.len() < 4 || !is_digit(value, 0) {
                    err = true;
                } else {
                    let p = &value[..4];
                    value = &value[4..];
                    match atoi(p) {
                        Some(y) => year = y,
                        None => err = true,
                    }
                }
            }
            STD_MONTH | STD_LONG_MONTH => {
                let tab: &[&str] = if std & STD_MASK == STD_MONTH {
                    &SHORT_MONTH_NAMES
                } else {
                    &LONG_MONTH_NAMES
                };
                match lookup(tab, value) {
                    Some((m, v)) => {
                        month = m + 1;
                        value = v;
                    }
                    None => err = true,
                }
            }
            STD_NUM_MONTH | STD_ZERO_MONTH => match getnum(value, std == STD_ZERO_MONTH) {
                Some((m, v)) => {
                    month = m;
                    value = v;
                    if month <= 0 || 12 < month {
                        range_err = Some("month");
                    }
                }
                None => err = true,
            },
            STD_WEEK_DAY | STD_LONG_WEEK_DAY => {
                let tab: &[&str] = if std & STD_MASK == STD_WEEK_DAY {
                    &SHORT_DAY_NAMES
                } else {
                    &LONG_DAY_NAMES
                };
                match lookup(tab, value) {
                    Some((_, v)) => value = v,
                    None => err = true,
                }
            }
            STD_DAY | STD_UNDER_DAY | STD_ZERO_DAY => {
                if std == STD_UNDER_DAY && value.first() == Some(&b' ') {
                    value = &value[1..];
                }
                match getnum(value, std == STD_ZERO_DAY) {
                    Some((d, v)) => {
                        day = d;
                        value = v;
                    }
                    None => err = true,
                }
            }
            STD_UNDER_YEAR_DAY | STD_ZERO_YEAR_DAY => {
                for _ in 0..2 {
                    if std == STD_UNDER_YEAR_DAY && value.first() == Some(&b' ') {
                        value = &value[1..];
                    }
                }
                match getnum3(value, std == STD_ZERO_YEAR_DAY) {
                    Some((d, v)) => {
                        yday = d;
                        value = v;
                    }
                    None => err = true,
                }
            }
            STD_HOUR => match getnum(value, false) {
                Some((h, v)) => {
                    hour = h;
                    value = v;
                    if !(0..24).contains(&hour) {
                        range_err = Some("hour");
                    }
                }
                None => err = true,
            },
            STD_HOUR12 | STD_ZERO_HOUR12 => match getnum(value, std == STD_ZERO_HOUR12) {
                Some((h, v)) => {
                    hour = h;
                    value = v;
                    if !(0..=12).contains(&hour) {
                        range_err = Some("hour");
                    }
                }
                None => err = true,
            },
            STD_MINUTE | STD_ZERO_MINUTE => match getnum(value, std == STD_ZERO_MINUTE) {
                Some((m, v)) => {
                    min = m;
                    value = v;
                    if !(0..60).contains(&min) {
                        range_err = Some("minute");
                    }
                }
                None => err = true,
            },
            STD_SECOND | STD_ZERO_SECOND => match getnum(value, std == STD_ZERO_SECOND) {
                Some((s, v)) => {
                    sec = s;
                    value = v;
                    if !(0..60).contains(&sec) {
                        range_err = Some("second");
                    } else if value.len() >= 2 && comma_or_period(value[0]) && is_digit(value, 1) {
                        // A fractional second in the value but not (next) in the layout?
                        let next = chunks.get(ci + 1).map_or(0, |c| c.std) & STD_MASK;
                        if next != STD_FRAC_SECOND0 && next != STD_FRAC_SECOND9 {
                            let mut n = 2;
                            while n < value.len() && is_digit(value, n) {
                                n += 1;
                            }
                            match parse_nanoseconds(value, n) {
                                Ok((ns, re)) => {
                                    nsec = ns;
                                    if re {
                                        range_err = Some("fractional second");
                                    }
                                }
                                Err(()) => err = true,
                            }
                            value = &value[n..];
                        }
                    }
                }
                None => err = true,
            },
            STD_PM | STD_LOWER_PM => {
                if value.len() < 2 {
                    err = true;
                } else {
                    let p = &value[..2];
                    value = &value[2..];
                    let (pm, am): (&[u8], &[u8]) = if std & STD_MASK == STD_PM {
                        (b"PM", b"AM")
                    } else {
                        (b"pm", b"am")
                    };
                    if p == pm {
                        pm_set = true;
                    } else if p == am {
                        am_set = true;
                    } else {
                        err = true;
                    }
                }
            }
            s @ (STD_ISO8601_TZ
            | STD_ISO8601_SHORT_TZ
            | STD_ISO8601_COLON_TZ
            | STD_ISO8601_SECONDS_TZ
            | STD_ISO8601_COLON_SECONDS_TZ
            | STD_NUM_TZ
            | STD_NUM_SHORT_TZ
            | STD_NUM_COLON_TZ
            | STD_NUM_SECONDS_TZ
            | STD_NUM_COLON_SECONDS_TZ) => {
                let iso = matches!(
                    s,
                    STD_ISO8601_TZ
                        | STD_ISO8601_SHORT_TZ
                        | STD_ISO8601_COLON_TZ
                        | STD_ISO8601_SECONDS_TZ
                        | STD_ISO8601_COLON_SECONDS_TZ
                );
                if iso && value.first() == Some(&b'Z') {
                    value = &value[1..];
                    z_utc = true;
                } else {
                    // (sign, hour, min, seconds, rest)
                    let parts: Option<OffsetParts<'_>> = if s == STD_ISO8601_COLON_TZ
                        || s == STD_NUM_COLON_TZ
                    {
                        if value.len() < 6 || value[3] != b':' {
                            None
                        } else {
                            Some((value[0], &value[1..3], &value[4..6], b"00", &value[6..]))
                        }
                    } else if s == STD_NUM_SHORT_TZ || s == STD_ISO8601_SHORT_TZ {
                        if value.len() < 3 {
                            None
                        } else {
                            Some((value[0], &value[1..3], b"00", b"00", &value[3..]))
                        }
                    } else if s == STD_ISO8601_COLON_SECONDS_TZ || s == STD_NUM_COLON_SECONDS_TZ {
                        if value.len() < 9 || value[3] != b':' || value[6] != b':' {
                            None
                        } else {
                            Some((
                                value[0],
                                &value[1..3],
                                &value[4..6],
                                &value[7..9],
                                &value[9..],
                            ))
                        }
                    } else if s == STD_ISO8601_SECONDS_TZ || s == STD_NUM_SECONDS_TZ {
                        if value.len() < 7 {
                            None
                        } else {
                            Some((
                                value[0],
                                &value[1..3],
                                &value[3..5],
                                &value[5..7],
                                &value[7..],
                            ))
                        }
                    } else if value.len() < 5 {
                        None
                    } else {
                        Some((value[0], &value[1..3], &value[3..5], b"00", &value[5..]))
                    };
                    match parts {
                        None => err = true,
                        Some((sign, h, m, sx, rest)) => {
                            value = rest;
                            let mut hr = 0;
                            let mut mm = 0;
                            let mut ss = 0;
                            match getnum(h, true) {
                                Some((v, _)) => {
                                    hr = v;
                                    match getnum(m, true) {
                                        Some((v, _)) => {
                                            mm = v;
                                            match getnum(sx, true) {
                                                Some((v, _)) => ss = v,
                                                None => err = true,
                                            }
                                        }
                                        None => err = true,
                                    }
                                }
                                None => err = true,
                            }
                            if hr > 24 {
                                range_err = Some("time zone offset hour");
                            }
                            if mm > 60 {
                                range_err = Some("time zone offset minute");
                            }
                            if ss > 60 {
                                range_err = Some("time zone offset second");
                            }
                            zone_offset = (hr * 60 + mm) * 60 + ss;
                            match sign {
                                b'+' => {}
                                b'-' => zone_offset = -zone_offset,
                                _ => err = true,
                            }
                        }
                    }
                }
            }
            STD_TZ => {
                if value.len() >= 3 && &value[..3] == b"UTC" {
                    z_utc = true;
                    value = &value[3..];
                } else {
                    match parse_time_zone(value) {
                        Some(n) => {
                            zone_name = &value[..n];
                            value = &value[n..];
                        }
                        None => err = true,
                    }
                }
            }
            STD_FRAC_SECOND0 => {
                // Exactly the number of digits the layout gives (mod 4096, as Go packs it).
                let ndigit = 1 + digits_len(std);
                if value.len() < ndigit {
                    err = true;
                } else {
                    match parse_nanoseconds(value, ndigit) {
                        Ok((ns, re)) => {
                            nsec = ns;
                            if re {
                                range_err = Some("fractional second");
                            }
                        }
                        Err(()) => err = true,
                    }
                    value = &value[ndigit..];
                }
            }
            STD_FRAC_SECOND9 => {
                if value.len() < 2 || !comma_or_period(value[0]) || !value[1].is_ascii_digit() {
                    // Fractional second omitted.
                } else {
                    let mut i = 0;
                    while i + 1 < value.len() && value[i + 1].is_ascii_digit() {
                        i += 1;
                    }
                    match parse_nanoseconds(value, 1 + i) {
                        Ok((ns, re)) => {
                            nsec = ns;
                            if re {
                                range_err = Some("fractional second");
                            }
                        }
                        Err(()) => err = true,
                    }
                    value = &value[1 + i..];
                }
            }
            _ => {}
        }
        if let Some(what) = range_err {
            return Err(parse_error(
                alayout,
                value_all,
                stdstr,
                value,
                &format!(": {what} out of range"),
            ));
        }
        if err {
            return Err(parse_error(alayout, value_all, stdstr, hold, ""));
        }
    }
    if pm_set && hour < 12 {
        hour += 12;
    } else if am_set && hour == 12 {
        hour = 0;
    }

    // Convert yday to day, month.
    if yday >= 0 {
        let mut d = 0;
        let mut m = 0;
        if is_leap(year) {
            if yday == 31 + 29 {
                m = 2;
                d = 29;
            } else if yday > 31 + 29 {
                yday -= 1;
            }
        }
        if !(1..=365).contains(&yday) {
            return Err(parse_error(
                alayout,
                value_all,
                b"",
                value,
                ": day-of-year out of range",
            ));
        }
        if m == 0 {
            m = (yday - 1) / 31 + 1;
            if i64::from(DAYS_BEFORE[m as usize]) < yday {
                m += 1;
            }
            d = yday - i64::from(DAYS_BEFORE[(m - 1) as usize]);
        }
        if month >= 0 && month != m {
            return Err(parse_error(
                alayout,
                value_all,
                b"",
                value,
                ": day-of-year does not match month",
            ));
        }
        month = m;
        if day >= 0 && day != d {
            return Err(parse_error(
                alayout,
                value_all,
                b"",
                value,
                ": day-of-year does not match day",
            ));
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

    // Validate the day of the month.
    if day < 1 || day > days_in(month, year) {
        return Err(parse_error(
            alayout,
            value_all,
            b"",
            value,
            ": day out of range",
        ));
    }

    if z_utc {
        return Ok(Parsed {
            t: date(year, month, day, hour, min, sec, nsec, Zl::Utc),
            loc: Zl::Utc,
        });
    }

    if zone_offset != -1 {
        let mut t = date(year, month, day, hour, min, sec, nsec, Zl::Utc);
        t.add_sec(-zone_offset);
        // Use the local zone with this offset if it was in effect then.
        let (name, offset) = local.lookup(t.unix_seconds());
        if offset == zone_offset && (zone_name.is_empty() || name.as_bytes() == zone_name) {
            return Ok(Parsed { t, loc: local });
        }
        return Ok(Parsed {
            t,
            loc: Zl::Fixed(ascii(zone_name), zone_offset),
        });
    }

    if !zone_name.is_empty() {
        let mut t = date(year, month, day, hour, min, sec, nsec, Zl::Utc);
        let name = ascii(zone_name);
        if let Some(offset) = local.lookup_name(name, t.unix_seconds()) {
            t.add_sec(-offset);
            return Ok(Parsed { t, loc: local });
        }
        // Unknown abbreviation: a fabricated zone, the wall clock taken as UTC.
        let mut offset = 0;
        if zone_name.len() > 3 && &zone_name[..3] == b"GMT" {
            offset = atoi(&zone_name[3..]).unwrap_or(0).wrapping_mul(3600);
        }
        return Ok(Parsed {
            t,
            loc: Zl::Fixed(name, offset),
        });
    }

    Ok(Parsed {
        t: date(year, month, day, hour, min, sec, nsec, default_loc),
        loc: default_loc,
    })
}
