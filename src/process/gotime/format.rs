//! Go's `Time.Format` (`appendFormat`, `appendInt`, `appendNano`).

use super::civil::{Civil, GoTime};
use super::layout::*;
use super::zone::Zl;

/// Go's day names, Sunday first.
pub const LONG_DAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
pub(crate) const SHORT_DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
pub(crate) const SHORT_MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// Go's month names.
pub const LONG_MONTH_NAMES: [&str; 12] = [
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

/// Go's `appendInt`: decimal form of x, zero-padded to `width` digits (sign excluded).
pub(crate) fn append_int(b: &mut Vec<u8>, x: i64, width: usize) {
    let mut u = x as u64;
    if x < 0 {
        b.push(b'-');
        u = (x as u64).wrapping_neg();
    }
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (u % 10) as u8;
        n += 1;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    for _ in n..width {
        b.push(b'0');
    }
    for i in (0..n).rev() {
        b.push(digits[i]);
    }
}

fn month_name(m: i64) -> &'static str {
    LONG_MONTH_NAMES[(m.clamp(1, 12) - 1) as usize]
}

/// Go's `appendNano`.
fn append_nano(b: &mut Vec<u8>, nanosec: i64, std: u32) {
    let trim = std & STD_MASK == STD_FRAC_SECOND9;
    let n = digits_len(std);
    if trim && (n == 0 || nanosec == 0) {
        return;
    }
    let dot = separator(std);
    b.push(dot);
    append_int(b, nanosec, 9);
    if n < 9 {
        b.truncate(b.len() - 9 + n);
    }
    if trim {
        while b.last() == Some(&b'0') {
            b.pop();
        }
        if b.last() == Some(&dot) {
            b.pop();
        }
    }
}

fn append_offset(b: &mut Vec<u8>, std: u32, offset: i64) {
    let is_iso = matches!(
        std,
        STD_ISO8601_TZ
            | STD_ISO8601_COLON_TZ
            | STD_ISO8601_SECONDS_TZ
            | STD_ISO8601_SHORT_TZ
            | STD_ISO8601_COLON_SECONDS_TZ
    );
    if offset == 0 && is_iso {
        b.push(b'Z');
        return;
    }
    let mut zone = offset / 60;
    let mut absoffset = offset;
    if zone < 0 {
        b.push(b'-');
        zone = -zone;
        absoffset = -absoffset;
    } else {
        b.push(b'+');
    }
    append_int(b, zone / 60, 2);
    if matches!(
        std,
        STD_ISO8601_COLON_TZ
            | STD_NUM_COLON_TZ
            | STD_ISO8601_COLON_SECONDS_TZ
            | STD_NUM_COLON_SECONDS_TZ
    ) {
        b.push(b':');
    }
    if std != STD_NUM_SHORT_TZ && std != STD_ISO8601_SHORT_TZ {
        append_int(b, zone % 60, 2);
    }
    if matches!(
        std,
        STD_ISO8601_SECONDS_TZ
            | STD_NUM_SECONDS_TZ
            | STD_NUM_COLON_SECONDS_TZ
            | STD_ISO8601_COLON_SECONDS_TZ
    ) {
        if std == STD_NUM_COLON_SECONDS_TZ || std == STD_ISO8601_COLON_SECONDS_TZ {
            b.push(b':');
        }
        append_int(b, absoffset % 60, 2);
    }
}

/// Go's `t.Format(layout)` for the instant `t` shown in `loc`.
pub(crate) fn format_time(t: GoTime, layout: &str, loc: Zl<'_>) -> String {
    let b = format_bytes(t, layout.as_bytes(), loc);
    // The layout is valid UTF-8 and every insertion is ASCII or whole layout bytes; a token
    // never splits a multi-byte character (all token bytes are ASCII).
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// [`format_time`] for a layout of any bytes (Go's strings need not be UTF-8).
pub(crate) fn format_bytes(t: GoTime, lb: &[u8], loc: Zl<'_>) -> Vec<u8> {
    let (c, name, offset) = t.civil_in(loc);
    let mut b: Vec<u8> = Vec::with_capacity(lb.len() + 10);
    let mut pos = 0;
    while pos < lb.len() {
        let (plen, std, suffix) = next_std_chunk(&lb[pos..]);
        b.extend_from_slice(&lb[pos..pos + plen]);
        if std == 0 {
            break;
        }
        pos += suffix;
        append_std(&mut b, std, &c, name, offset, t.nsec);
    }
    b
}

fn append_std(b: &mut Vec<u8>, std: u32, c: &Civil, name: &str, offset: i64, nsec: u32) {
    let hour = c.hour;
    match std & STD_MASK {
        STD_YEAR => {
            let mut y = c.year;
            if y < 0 {
                y = y.wrapping_neg();
            }
            append_int(b, y % 100, 2);
        }
        STD_LONG_YEAR => append_int(b, c.year, 4),
        STD_MONTH => b.extend_from_slice(&month_name(c.month).as_bytes()[..3]),
        STD_LONG_MONTH => b.extend_from_slice(month_name(c.month).as_bytes()),
        STD_NUM_MONTH => append_int(b, c.month, 0),
        STD_ZERO_MONTH => append_int(b, c.month, 2),
        STD_WEEK_DAY => b.extend_from_slice(SHORT_DAY_NAMES[c.weekday as usize].as_bytes()),
        STD_LONG_WEEK_DAY => b.extend_from_slice(LONG_DAY_NAMES[c.weekday as usize].as_bytes()),
        STD_DAY => append_int(b, c.day, 0),
        STD_UNDER_DAY => {
            if c.day < 10 {
                b.push(b' ');
            }
            append_int(b, c.day, 0);
        }
        STD_ZERO_DAY => append_int(b, c.day, 2),
        STD_UNDER_YEAR_DAY => {
            if c.yday < 100 {
                b.push(b' ');
                if c.yday < 10 {
                    b.push(b' ');
                }
            }
            append_int(b, c.yday, 0);
        }
        STD_ZERO_YEAR_DAY => append_int(b, c.yday, 3),
        STD_HOUR => append_int(b, hour, 2),
        STD_HOUR12 | STD_ZERO_HOUR12 => {
            let mut hr = hour % 12;
            if hr == 0 {
                hr = 12;
            }
            append_int(b, hr, if std == STD_HOUR12 { 0 } else { 2 });
        }
        STD_MINUTE => append_int(b, c.minute, 0),
        STD_ZERO_MINUTE => append_int(b, c.minute, 2),
        STD_SECOND => append_int(b, c.second, 0),
        STD_ZERO_SECOND => append_int(b, c.second, 2),
        STD_PM => b.extend_from_slice(if hour >= 12 { b"PM" } else { b"AM" }),
        STD_LOWER_PM => b.extend_from_slice(if hour >= 12 { b"pm" } else { b"am" }),
        STD_ISO8601_TZ
        | STD_ISO8601_COLON_TZ
        | STD_ISO8601_SECONDS_TZ
        | STD_ISO8601_SHORT_TZ
        | STD_ISO8601_COLON_SECONDS_TZ
        | STD_NUM_TZ
        | STD_NUM_COLON_TZ
        | STD_NUM_SECONDS_TZ
        | STD_NUM_SHORT_TZ
        | STD_NUM_COLON_SECONDS_TZ => append_offset(b, std, offset),
        STD_TZ => {
            if !name.is_empty() {
                b.extend_from_slice(name.as_bytes());
            } else {
                let mut zone = offset / 60;
                if zone < 0 {
                    b.push(b'-');
                    zone = -zone;
                } else {
                    b.push(b'+');
                }
                append_int(b, zone / 60, 2);
                append_int(b, zone % 60, 2);
            }
        }
        STD_FRAC_SECOND0 | STD_FRAC_SECOND9 => append_nano(b, i64::from(nsec), std),
        _ => {}
    }
}

/// Calendar fields of `t` in UTC (used by tests).
#[cfg(test)]
pub(crate) fn civil_utc(t: GoTime) -> Civil {
    super::civil::civil_from_abs(t.abs_with_offset(0))
}

#[cfg(test)]
mod tests {
    use super::super::located::date;
    use super::super::zone::{Location, Zl};
    use super::*;

    fn ref_time() -> GoTime {
        // Mon Jan 2 15:04:05.123456789 MST 2006 (-0700)
        date(2006, 1, 2, 22, 4, 5, 123_456_789, Zl::Utc)
    }

    #[test]
    fn every_token() {
        let mst = Zl::Fixed("MST", -7 * 3600);
        let t = ref_time();
        let f = |l: &str| format_time(t, l, mst);
        assert_eq!(f("2006 06 01 1 Jan January"), "2006 06 01 1 Jan January");
        assert_eq!(
            f("02 2 _2 002 __2 Mon Monday"),
            "02 2  2 002   2 Mon Monday"
        );
        assert_eq!(f("15 03 3 04 4 05 5 PM pm"), "15 03 3 04 4 05 5 PM pm");
        assert_eq!(
            f("MST Z07:00 Z0700 Z07 -07:00 -0700 -07"),
            "MST -07:00 -0700 -07 -07:00 -0700 -07"
        );
        assert_eq!(
            f("-07:00:00 -070000 Z07:00:00 Z070000"),
            "-07:00:00 -070000 -07:00:00 -070000"
        );
        assert_eq!(f(".000 .999 ,000 ,999 .0 .9"), ".123 .123 ,123 ,123 .1 .1");
        assert_eq!(f(".000000000000"), ".123456789");
        assert_eq!(f("05.9999999999"), "05.123456789");
        assert_eq!(f("no tokens here?"), "no tokens here?");
        assert_eq!(format_time(t, "Z07:00 MST", Zl::Utc), "Z UTC");
        assert_eq!(
            format_time(t, "MST", Zl::Fixed("", 5 * 3600 + 1800)),
            "+0530"
        );
        assert_eq!(format_time(t, "MST", Zl::Fixed("", -1800)), "-0030");
        let z = date(2006, 1, 2, 0, 0, 0, 0, Zl::Utc);
        assert_eq!(format_time(z, "3PM .999 ,9", Zl::Utc), "12AM  ");
        assert_eq!(format_time(z, ".000", Zl::Utc), ".000");
    }

    #[test]
    fn named_formats() {
        let t = ref_time();
        let mst = Zl::Fixed("MST", -7 * 3600);
        assert_eq!(
            format_time(t, super::super::ANSIC, mst),
            "Mon Jan  2 15:04:05 2006"
        );
        assert_eq!(
            format_time(t, super::super::RFC3339_NANO, mst),
            "2006-01-02T15:04:05.123456789-07:00"
        );
        assert_eq!(
            format_time(t, super::super::RFC1123Z, mst),
            "Mon, 02 Jan 2006 15:04:05 -0700"
        );
        assert_eq!(
            format_time(t, super::super::RFC850, mst),
            "Monday, 02-Jan-06 15:04:05 MST"
        );
    }

    #[test]
    fn zones() {
        let paris = Location::load("Europe/Paris").unwrap();
        let t = date(2024, 7, 1, 12, 0, 0, 0, Zl::Utc);
        assert_eq!(
            format_time(t, "15:04 MST -07:00", paris.zl()),
            "14:00 CEST +02:00"
        );
        let old = date(1800, 1, 1, 0, 0, 0, 0, Zl::Utc);
        assert_eq!(
            format_time(old, "15:04:05 MST -07:00:00", paris.zl()),
            "00:09:21 LMT +00:09:21"
        );
        assert_eq!(civil_utc(old).year, 1800);
    }
}
