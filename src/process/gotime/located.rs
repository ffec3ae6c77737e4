//! Instants in a location: calendar fields in a zone, Go's `time.Date` and
//! `AddDate`. Between the plain calendar arithmetic ([`super::civil`]) and
//! the zones ([`super::zone`]), which both sit below it.

use super::civil::{
    ABSOLUTE_TO_UNIX, Civil, GoTime, SECONDS_PER_DAY, SECONDS_PER_HOUR, SECONDS_PER_MINUTE,
    UNIX_TO_INTERNAL, civil_from_abs, date_to_abs_days, norm,
};
use super::zone::Zl;

impl GoTime {
    /// Calendar fields of this instant in `loc`, plus the zone name and offset in effect.
    pub(crate) fn civil_in<'a>(&self, loc: Zl<'a>) -> (Civil, &'a str, i64) {
        let (name, offset) = loc.lookup(self.unix_seconds());
        (civil_from_abs(self.abs_with_offset(offset)), name, offset)
    }

    /// Calendar fields of this instant in `loc` (Go's `t.In(loc).Date()`, `Clock()`,
    /// `YearDay()`, `Weekday()`), the zone's abbreviation and offset in seconds (`Zone()`).
    pub fn civil<'a>(&self, loc: &'a super::Location) -> (Civil, &'a str, i64) {
        self.civil_in(loc.zl())
    }

    /// `t.UTC().Format(time.RFC3339Nano)`.
    pub fn to_rfc3339_nano_utc(&self) -> String {
        super::format::format_time(*self, super::RFC3339_NANO, Zl::Utc)
    }
}

/// Go's `time.Date(year, month, day, hour, min, sec, nsec, loc)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn date(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    min: i64,
    sec: i64,
    nsec: i64,
    loc: Zl<'_>,
) -> GoTime {
    let (year, m) = norm(year, month.wrapping_sub(1), 12);
    let month = m + 1;
    let (sec, nsec) = norm(sec, nsec, 1_000_000_000);
    let (min, sec) = norm(min, sec, 60);
    let (hour, min) = norm(hour, min, 60);
    let (day, hour) = norm(day, hour, 24);
    let mut unix = (date_to_abs_days(year, month, day) as i64)
        .wrapping_mul(SECONDS_PER_DAY)
        .wrapping_add(
            hour.wrapping_mul(SECONDS_PER_HOUR)
                .wrapping_add(min.wrapping_mul(SECONDS_PER_MINUTE))
                .wrapping_add(sec),
        )
        .wrapping_add(ABSOLUTE_TO_UNIX);
    // Go looks up the offset at the wall time taken as UTC, then (when that guess is not
    // valid at the corrected instant) at the corrected instant. Looking up the corrected
    // instant again always yields the same offset as Go's start/end check.
    let (_, offset) = loc.lookup(unix);
    if offset != 0 {
        let utc = unix.wrapping_sub(offset);
        let (_, offset2) = loc.lookup(utc);
        unix = unix.wrapping_sub(offset2);
    }
    GoTime {
        ext: unix.wrapping_add(UNIX_TO_INTERNAL),
        nsec: nsec as u32,
    }
}

/// Go's `t.AddDate(years, 0, 0)` for a time whose location is `loc`.
pub(crate) fn add_years(t: GoTime, years: i64, loc: Zl<'_>) -> GoTime {
    let (c, _, _) = t.civil_in(loc);
    date(
        c.year.wrapping_add(years),
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        i64::from(t.nsec),
        loc,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_roundtrip() {
        for &(y, m, d) in &[
            (1970, 1, 1),
            (2000, 2, 29),
            (0, 1, 1),
            (0, 2, 29),
            (2024, 12, 31),
            (9999, 12, 31),
            (1, 1, 1),
            (-1, 12, 31),
        ] {
            let t = date(y, m, d, 13, 14, 15, 5, Zl::Utc);
            let c = civil_from_abs(t.abs_with_offset(0));
            assert_eq!(
                (c.year, c.month, c.day, c.hour, c.minute, c.second),
                (y, m, d, 13, 14, 15)
            );
        }
        let t = date(1970, 1, 1, 0, 0, 0, 0, Zl::Utc);
        assert_eq!(t.unix_seconds(), 0);
        let c = civil_from_abs(t.abs_with_offset(0));
        assert_eq!(c.weekday, 4); // Thursday
        assert_eq!(c.yday, 1);
        // normalisation: Feb 30 -> Mar 1 (2023), 25:61 -> next day
        let t = date(2023, 2, 30, 25, 61, 0, 0, Zl::Utc);
        let c = civil_from_abs(t.abs_with_offset(0));
        assert_eq!((c.month, c.day, c.hour, c.minute), (3, 3, 2, 1));
    }
}
