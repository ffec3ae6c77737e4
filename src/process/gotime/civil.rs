//! Calendar arithmetic exactly as Go's `time` package does it (Go 1.23+ "absolute"
//! March-based calendar, Neri–Schneider divisions), including Go's silent int64/uint64
//! wrap-around for instants far outside any sensible range: every operation here is
//! wrapping, so nothing can panic whatever the input.

pub(crate) const SECONDS_PER_MINUTE: i64 = 60;
pub(crate) const SECONDS_PER_HOUR: i64 = 60 * SECONDS_PER_MINUTE;
pub(crate) const SECONDS_PER_DAY: i64 = 24 * SECONDS_PER_HOUR;

/// Days from March 1 through the end of the year.
const MARCH_THRU_DECEMBER: u64 = 31 + 30 + 31 + 30 + 31 + 31 + 30 + 31 + 30 + 31;
/// Years subtracted from internal time to get absolute time (0 mod 400).
const ABSOLUTE_YEARS: u64 = 292_277_022_400;

/// Go: `absoluteToInternal = -(absoluteYears*365.2425 + marchThruDecember) * secondsPerDay`.
const ABSOLUTE_TO_INTERNAL: i64 =
    -(((ABSOLUTE_YEARS / 400 * 146_097) + MARCH_THRU_DECEMBER) as i64 * SECONDS_PER_DAY);
const INTERNAL_TO_ABSOLUTE: i64 = -ABSOLUTE_TO_INTERNAL;
/// Seconds from 0001-01-01 to 1970-01-01.
pub(crate) const UNIX_TO_INTERNAL: i64 =
    (1969 * 365 + 1969 / 4 - 1969 / 100 + 1969 / 400) * SECONDS_PER_DAY;
pub(crate) const INTERNAL_TO_UNIX: i64 = -UNIX_TO_INTERNAL;
pub(super) const ABSOLUTE_TO_UNIX: i64 = ABSOLUTE_TO_INTERNAL + INTERNAL_TO_UNIX;
const UNIX_TO_ABSOLUTE: i64 = UNIX_TO_INTERNAL + INTERNAL_TO_ABSOLUTE;

/// Days before month m (0-based index m = month-1) in a non-leap year; entry 12 = 365.
pub(crate) const DAYS_BEFORE: [i32; 13] = [
    0,
    31,
    31 + 28,
    31 + 28 + 31,
    31 + 28 + 31 + 30,
    31 + 28 + 31 + 30 + 31,
    31 + 28 + 31 + 30 + 31 + 30,
    31 + 28 + 31 + 30 + 31 + 30 + 31,
    31 + 28 + 31 + 30 + 31 + 30 + 31 + 31,
    31 + 28 + 31 + 30 + 31 + 30 + 31 + 31 + 30,
    31 + 28 + 31 + 30 + 31 + 30 + 31 + 31 + 30 + 31,
    31 + 28 + 31 + 30 + 31 + 30 + 31 + 31 + 30 + 31 + 30,
    31 + 28 + 31 + 30 + 31 + 30 + 31 + 31 + 30 + 31 + 30 + 31,
];

pub(crate) fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Go's `daysIn(m, year)`; `month` must be 1..=12.
pub(crate) fn days_in(month: i64, year: i64) -> i64 {
    if month == 2 && is_leap(year) {
        return 29;
    }
    let m = month.clamp(1, 12) as usize;
    (DAYS_BEFORE[m] - DAYS_BEFORE[m - 1]) as i64
}

/// Go's `dateToAbsDays`.
pub(super) fn date_to_abs_days(year: i64, month: i64, day: i64) -> u64 {
    let mut amonth = month as u32;
    let jan_feb: u32 = u32::from(amonth < 3);
    amonth = amonth.wrapping_add(12 * jan_feb);
    let y = (year as u64)
        .wrapping_sub(u64::from(jan_feb))
        .wrapping_add(ABSOLUTE_YEARS);
    let ayday = (979u32.wrapping_mul(amonth).wrapping_sub(2919)) >> 5;
    let century = y / 100;
    let cyear = (y % 100) as u32;
    let cday = 1461 * cyear / 4;
    let centurydays = 146_097u64.wrapping_mul(century) / 4;
    centurydays.wrapping_add(
        (i64::from(cday.wrapping_add(ayday)))
            .wrapping_add(day)
            .wrapping_sub(1) as u64,
    )
}

/// Split of absolute days: (century, cyear, ayday).
fn split_days(days: u64) -> (u64, u32, u32) {
    let d = days.wrapping_mul(4).wrapping_add(3);
    let century = d / 146_097;
    let cd = ((d % 146_097) as u32) | 3;
    let prod = 2_939_745u64 * u64::from(cd);
    let hi = (prod >> 32) as u32;
    let lo = prod as u32;
    (century, hi, lo / 2_939_745 / 4)
}

/// Calendar fields of an instant in a location.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    /// 1-based day of the year.
    pub yday: i64,
    /// 0 = Sunday.
    pub weekday: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
}

/// Go: `absSeconds` → date, yday, weekday, clock.
pub(crate) fn civil_from_abs(abs: u64) -> Civil {
    let days = abs / SECONDS_PER_DAY as u64;
    let (century, cyear, ayday) = split_days(days);
    let d = 2141u32 * ayday + 197_913;
    let amonth = i64::from(d >> 16);
    let day = 1 + i64::from((d & 0xFFFF) / 2141);
    let jan_feb = i64::from(u64::from(ayday) >= MARCH_THRU_DECEMBER);
    let year = (century.wrapping_mul(100).wrapping_sub(ABSOLUTE_YEARS) as i64)
        .wrapping_add(i64::from(cyear))
        .wrapping_add(jan_feb);
    let month = amonth - jan_feb * 12;
    let y4ok = i64::from(cyear % 4 == 0);
    let y100ok = i64::from(cyear != 0);
    let y400ok = i64::from(century % 4 == 0);
    let leap = y4ok & (y100ok | y400ok);
    let yday = i64::from(ayday) + (1 + 31 + 28) + (leap & !jan_feb) - 365 * jan_feb;
    let weekday = (days.wrapping_add(3) % 7) as i64;
    let secs = (abs % SECONDS_PER_DAY as u64) as i64;
    let hour = secs / SECONDS_PER_HOUR;
    let minute = (secs % SECONDS_PER_HOUR) / SECONDS_PER_MINUTE;
    let second = secs % SECONDS_PER_MINUTE;
    Civil {
        year,
        month,
        day,
        yday,
        weekday,
        hour,
        minute,
        second,
    }
}

/// Go's `norm`: hi*base+lo == nhi*base+nlo with 0 <= nlo < base (wrapping on overflow).
pub(super) fn norm(hi: i64, lo: i64, base: i64) -> (i64, i64) {
    let (mut hi, mut lo) = (hi, lo);
    if lo < 0 {
        let n = (lo.wrapping_neg().wrapping_sub(1)) / base + 1;
        hi = hi.wrapping_sub(n);
        lo = lo.wrapping_add(n.wrapping_mul(base));
    }
    if lo >= base {
        let n = lo / base;
        hi = hi.wrapping_add(n);
        lo = lo.wrapping_sub(n.wrapping_mul(base));
    }
    (hi, lo)
}

/// An instant as Go's `time.Time` holds it (without location and monotonic reading):
/// `ext` = seconds since 0001-01-01T00:00:00Z (Go's internal seconds), `nsec` in 0..1e9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GoTime {
    pub(crate) ext: i64,
    pub(crate) nsec: u32,
}

impl GoTime {
    /// Go's `time.Unix(sec, nsec)` (nsec may be outside 0..1e9; overflow wraps as in Go).
    pub fn from_unix(sec: i64, nsec: i64) -> GoTime {
        let (mut sec, mut nsec) = (sec, nsec);
        if !(0..1_000_000_000).contains(&nsec) {
            let n = nsec / 1_000_000_000;
            sec = sec.wrapping_add(n);
            nsec -= n * 1_000_000_000;
            if nsec < 0 {
                nsec += 1_000_000_000;
                sec = sec.wrapping_sub(1);
            }
        }
        GoTime {
            ext: sec.wrapping_add(UNIX_TO_INTERNAL),
            nsec: nsec as u32,
        }
    }

    /// Nanoseconds since the Unix epoch, as `time.Unix(0, ns)`.
    pub fn from_unix_nanos(ns: i64) -> GoTime {
        GoTime::from_unix(0, ns)
    }

    /// Go's `t.Unix()`: whole seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        self.ext.wrapping_add(INTERNAL_TO_UNIX)
    }

    /// Go's `t.Nanosecond()`: 0..=999_999_999.
    pub fn subsec_nanos(&self) -> u32 {
        self.nsec
    }

    /// Nanoseconds since the Unix epoch, `None` outside i64 (before 1677-09-21 or after
    /// 2262-04-11).
    pub fn unix_nanos(&self) -> Option<i64> {
        let v = i128::from(self.unix_seconds()) * 1_000_000_000 + i128::from(self.nsec);
        i64::try_from(v).ok()
    }

    /// Nanoseconds since the Unix epoch, clamped to `i64::MIN..=i64::MAX`.
    pub fn unix_nanos_saturating(&self) -> i64 {
        let v = i128::from(self.unix_seconds()) * 1_000_000_000 + i128::from(self.nsec);
        v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// Go's `t.Add(d)` for a duration in nanoseconds (seconds saturate as Go's `addSec`).
    pub fn add_nanos(self, d: i64) -> GoTime {
        let mut dsec = d / 1_000_000_000;
        let mut nsec = self.nsec as i64 + d % 1_000_000_000;
        if nsec >= 1_000_000_000 {
            dsec += 1;
            nsec -= 1_000_000_000;
        } else if nsec < 0 {
            dsec -= 1;
            nsec += 1_000_000_000;
        }
        let mut t = GoTime {
            ext: self.ext,
            nsec: nsec as u32,
        };
        t.add_sec(dsec);
        t
    }

    /// Go's `addSec`: saturating at ±(2^63-1).
    pub(crate) fn add_sec(&mut self, d: i64) {
        let sum = self.ext.wrapping_add(d);
        if (sum > self.ext) == (d > 0) {
            self.ext = sum;
        } else if d > 0 {
            self.ext = i64::MAX;
        } else {
            self.ext = -i64::MAX;
        }
    }

    /// Absolute seconds (Go's `absSec`) for a zone offset.
    pub(crate) fn abs_with_offset(&self, offset: i64) -> u64 {
        self.unix_seconds()
            .wrapping_add(offset)
            .wrapping_add(UNIX_TO_ABSOLUTE) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_go() {
        assert_eq!(UNIX_TO_INTERNAL, 62_135_596_800);
        // absoluteToInternal from Go 1.23+: -(292277022400*365.2425 + 306) * 86400
        assert_eq!(
            ABSOLUTE_TO_INTERNAL as i128,
            -((292_277_022_400i128 * 3_652_425 / 10_000 + 306) * 86_400)
        );
    }

    #[test]
    fn unix_and_add() {
        let t = GoTime::from_unix(1, -500_000_000);
        assert_eq!((t.unix_seconds(), t.subsec_nanos()), (0, 500_000_000));
        let t = GoTime::from_unix(i64::MIN, -1);
        assert_eq!(t.unix_seconds(), i64::MAX);
        let t = GoTime::from_unix_nanos(-1);
        assert_eq!((t.unix_seconds(), t.subsec_nanos()), (-1, 999_999_999));
        assert_eq!(t.unix_nanos(), Some(-1));
        assert_eq!(t.add_nanos(1).unix_nanos(), Some(0));
        let far = GoTime::from_unix(i64::MAX / 2, 0);
        assert_eq!(far.unix_nanos(), None);
        assert_eq!(far.unix_nanos_saturating(), i64::MAX);
    }
}
