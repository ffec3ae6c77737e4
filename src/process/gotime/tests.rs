//! Unit tests: every layout token, every named format, Unix variants, year-less layouts,
//! locations, and `format`. (tests/oracle.rs compares all of this with Go itself.)

use super::*;

fn p(layout: &str, value: &str) -> Result<String, String> {
    parse_layout(layout, value, None).map(|t| t.to_rfc3339_nano_utc())
}

fn ok(layout: &str, value: &str, want: &str) {
    assert_eq!(
        p(layout, value).as_deref(),
        Ok(want),
        "layout {layout:?} value {value:?}"
    );
}

fn bad(layout: &str, value: &str) {
    assert!(
        p(layout, value).is_err(),
        "layout {layout:?} value {value:?} parsed"
    );
}

const NOW_2026_06: i64 = 1_781_000_000 * 1_000_000_000; // 2026-06-09T10:13:20Z
const NOW_2026_01: i64 = 1_768_003_200 * 1_000_000_000; // 2026-01-10T00:00:00Z
const NOW_2025_12: i64 = 1_766_188_800 * 1_000_000_000; // 2025-12-20T00:00:00Z

#[test]
fn year_tokens() {
    ok("2006", "0042", "0042-01-01T00:00:00Z");
    ok("2006", "9999", "9999-01-01T00:00:00Z");
    bad("2006", "042");
    bad("2006", "-042");
    bad("2006", "+042");
    ok("06", "69", "1969-01-01T00:00:00Z");
    ok("06", "68", "2068-01-01T00:00:00Z");
    ok("06", "+5", "2005-01-01T00:00:00Z");
    ok("06", "-5", "1995-01-01T00:00:00Z");
    bad("06", "5");
    ok("_2006", "_2024", "2024-01-01T00:00:00Z");
}

#[test]
fn month_tokens() {
    ok("2006 01", "2024 03", "2024-03-01T00:00:00Z");
    bad("2006 01", "2024 3");
    ok("2006 1", "2024 3", "2024-03-01T00:00:00Z");
    ok("2006 1", "2024 12", "2024-12-01T00:00:00Z");
    bad("2006 1", "2024 13");
    bad("2006 1", "2024 0");
    ok("2006 Jan", "2024 mAR", "2024-03-01T00:00:00Z");
    ok("2006 January", "2024 september", "2024-09-01T00:00:00Z");
    bad("2006 January", "2024 Sep");
    ok("2006 JanX", "2024 JunX", "2024-06-01T00:00:00Z");
    bad("2006 Janx", "2024 Junx");
    bad("2006 Jan", "2024 Junexx");
}

#[test]
fn day_tokens() {
    ok("2006-01-02", "2024-02-29", "2024-02-29T00:00:00Z");
    bad("2006-01-02", "2023-02-29");
    bad("2006-01-02", "2024-04-31");
    bad("2006-01-02", "2024-01-2");
    ok("2006-01-2", "2024-01-2", "2024-01-02T00:00:00Z");
    ok("2006-01-_2", "2024-01- 2", "2024-01-02T00:00:00Z");
    ok("2006-01-_2", "2024-01-12", "2024-01-12T00:00:00Z");
    ok("2006 002", "2024 060", "2024-02-29T00:00:00Z");
    ok("2006 002", "2023 060", "2023-03-01T00:00:00Z");
    ok("2006 __2", "2024   1", "2024-01-01T00:00:00Z");
    ok("2006 __2", "2024 366", "2024-12-31T00:00:00Z");
    bad("2006 __2", "2023 366");
    bad("2006 002", "2024 000");
    bad("2006-01 002", "2024-02 061");
    ok("Mon 2006", "tue 2024", "2024-01-01T00:00:00Z");
    ok("Monday 2006", "Sunday 2024", "2024-01-01T00:00:00Z");
    bad("Monday 2006", "Sun 2024");
}

#[test]
fn clock_tokens() {
    ok("15:04:05", "23:59:59", "0000-01-01T23:59:59Z");
    bad("15:04:05", "24:00:00");
    bad("15:04:05", "23:60:00");
    bad("15:04:05", "23:00:60");
    ok("3:4:5", "1:2:3", "0000-01-01T01:02:03Z");
    ok("03:04 PM", "12:30 AM", "0000-01-01T00:30:00Z");
    ok("03:04 PM", "12:30 PM", "0000-01-01T12:30:00Z");
    ok("3:04pm", "1:30pm", "0000-01-01T13:30:00Z");
    bad("3:04pm", "1:30PM");
    bad("3:04PM", "13:30PM");
    ok("15 PM", "10 PM", "0000-01-01T22:00:00Z");
}

#[test]
fn fraction_tokens() {
    ok("05.000", "01.123", "0000-01-01T00:00:01.123Z");
    bad("05.000", "01.12");
    ok("05.000", "01,123", "0000-01-01T00:00:01.123Z");
    ok("05,999", "01.5", "0000-01-01T00:00:01.5Z");
    ok("05.999", "01", "0000-01-01T00:00:01Z");
    ok("05.999", "01.1234567891", "0000-01-01T00:00:01.123456789Z");
    ok("05", "01.987654321987", "0000-01-01T00:00:01.987654321Z");
    ok("05 MST", "01,5 UTC", "0000-01-01T00:00:01.5Z");
    ok(".0", ".5", "0000-01-01T00:00:00.5Z");
    ok("05.000", "01.+12", "0000-01-01T00:00:01.012Z");
    bad("05.000", "01.-12");
    ok(
        "05.000000000000",
        "01.123456789xyz",
        "0000-01-01T00:00:01.123456789Z",
    );
}

#[test]
fn zone_tokens() {
    ok("15:04 Z07:00", "10:00 Z", "0000-01-01T10:00:00Z");
    ok("15:04 Z07:00", "10:00 +02:00", "0000-01-01T08:00:00Z");
    ok("15:04 Z0700", "10:00 -0130", "0000-01-01T11:30:00Z");
    ok("15:04 Z07", "10:00 +02", "0000-01-01T08:00:00Z");
    ok("15:04 Z070000", "10:00 +020030", "0000-01-01T07:59:30Z");
    ok("15:04 Z07:00:00", "10:00 -00:00:30", "0000-01-01T10:00:30Z");
    ok("15:04 -0700", "10:00 +2400", "-0001-12-31T10:00:00Z");
    bad("15:04 -0700", "10:00 +2500");
    bad("15:04 -0700", "10:00 Z");
    bad("15:04 -07:00", "10:00 +0200");
    // An offset of exactly -1 second is Go's "no offset" sentinel.
    ok("15:04 -07:00:00", "10:00 -00:00:01", "0000-01-01T10:00:00Z");
    ok("15:04 MST", "10:00 UTC", "0000-01-01T10:00:00Z");
    // Unknown abbreviations (Local is UTC) read the wall clock as UTC, GMT+h included.
    ok("15:04 MST", "10:00 CEST", "0000-01-01T10:00:00Z");
    ok("15:04 MST", "10:00 GMT+3", "0000-01-01T10:00:00Z");
    ok("15:04 MST", "10:00 ChST", "0000-01-01T10:00:00Z");
    bad("15:04 MST", "10:00 ABCDEF");
    bad("15:04 MST", "10:00 Abc");
    let paris = Location::load("Europe/Paris").unwrap();
    let t = parse_layout(
        "2006-01-02 15:04 MST",
        "2024-07-01 10:00 CEST",
        Some(&paris),
    )
    .unwrap();
    assert_eq!(t.to_rfc3339_nano_utc(), "2024-07-01T08:00:00Z");
    let t = parse_layout("2006-01-02 15:04 MST", "2024-07-01 10:00 CET", Some(&paris)).unwrap();
    assert_eq!(t.to_rfc3339_nano_utc(), "2024-07-01T09:00:00Z");
}

#[test]
fn literal_text_and_spaces() {
    ok("2006 01", "2024    03", "2024-03-01T00:00:00Z");
    bad("2006 01", "202403");
    bad("2006", "2024 ");
    bad("2006", "2024x");
    ok("", "", "0000-01-01T00:00:00Z");
    bad("", "x");
    ok("hello 2006", "hello 2024", "2024-01-01T00:00:00Z");
}

#[test]
fn named_formats() {
    let f = |name: &str, v: &str| {
        Format::new(name, None)
            .unwrap()
            .parse_time(v, NOW_2026_06)
            .map(|t| t.to_rfc3339_nano_utc())
    };
    let paris = Some(load_location("Europe/Paris").unwrap());
    // The stage's location is ignored for named formats.
    let g = Format::new("RFC1123", paris).unwrap();
    assert_eq!(
        g.parse_time("Mon, 02 Jan 2006 15:04:05 CET", 0)
            .unwrap()
            .to_rfc3339_nano_utc(),
        "2006-01-02T15:04:05Z"
    );
    let want = "2006-01-02T22:04:05Z";
    assert_eq!(f("ANSIC", "Mon Jan  2 22:04:05 2006").as_deref(), Ok(want));
    assert_eq!(
        f("UnixDate", "Mon Jan  2 22:04:05 UTC 2006").as_deref(),
        Ok(want)
    );
    assert_eq!(
        f("RubyDate", "Mon Jan 02 15:04:05 -0700 2006").as_deref(),
        Ok(want)
    );
    assert_eq!(
        f("RFC822", "02 Jan 06 22:04 UTC").as_deref(),
        Ok("2006-01-02T22:04:00Z")
    );
    assert_eq!(
        f("RFC822Z", "02 Jan 06 15:04 -0700").as_deref(),
        Ok("2006-01-02T22:04:00Z")
    );
    assert_eq!(
        f("RFC850", "Monday, 02-Jan-06 22:04:05 UTC").as_deref(),
        Ok(want)
    );
    assert_eq!(
        f("RFC1123", "Mon, 02 Jan 2006 22:04:05 GMT").as_deref(),
        Ok(want)
    );
    assert_eq!(
        f("RFC1123Z", "Mon, 02 Jan 2006 15:04:05 -0700").as_deref(),
        Ok(want)
    );
    assert_eq!(
        f("RFC3339", "2006-01-02T15:04:05-07:00").as_deref(),
        Ok(want)
    );
    assert_eq!(
        f("RFC3339Nano", "2006-01-02T15:04:05.5-07:00").as_deref(),
        Ok("2006-01-02T22:04:05.5Z")
    );
    assert!(f("RFC3339", "2006-01-02 15:04:05Z").is_err());
    assert!(f("RFC1123", "Mon, 2 Jan 2006 15:04:05 GMT").is_err());
}

#[test]
fn unix_formats() {
    let f = |name: &str, v: &str| Format::new(name, None).unwrap().parse(v, 0);
    assert_eq!(f("Unix", "1562708916"), Ok(1_562_708_916_000_000_000));
    assert_eq!(f("Unix", "1562708916.414"), Ok(1_562_708_916_414_000_000));
    assert_eq!(f("Unix", "-1.5"), Ok(-500_000_000));
    assert_eq!(f("Unix", "1.-5"), Ok(950_000_000));
    assert_eq!(f("Unix", "9223372036854775807"), Ok(i64::MAX));
    assert!(f("Unix", "1.2.3").is_err());
    assert!(f("Unix", "").is_err());
    assert_eq!(f("UnixMs", "1562708916414"), Ok(1_562_708_916_414_000_000));
    assert!(f("UnixMs", "1562708916.414").is_err());
    assert_eq!(f("UnixMs", "-1"), Ok(-1_000_000));
    assert_eq!(f("UnixMs", "9223372036854775807"), Ok(-1_000_000)); // wraps as in Go
    assert_eq!(
        f("UnixUs", "1562708916414123"),
        Ok(1_562_708_916_414_123_000)
    );
    assert_eq!(f("UnixNs", "-9223372036854775808"), Ok(i64::MIN));
    assert!(f("UnixNs", "9223372036854775808").is_err());
    // Years Go accepts beyond the i64 nanosecond range are clamped by `parse`.
    let fmt = Format::new("2006", None).unwrap();
    assert_eq!(fmt.parse("0001", 0), Ok(i64::MIN));
    assert_eq!(
        fmt.parse_time("0001", 0).unwrap().unix_seconds(),
        -62_135_596_800
    );
}

#[test]
fn year_less_layouts() {
    let f = |loc: Option<&str>, v: &str, now: i64| {
        let tz = loc.map(|l| load_location(l).unwrap());
        Format::new("Jan _2 15:04:05", tz)
            .unwrap()
            .parse_time(v, now)
            .map(|t| t.to_rfc3339_nano_utc())
    };
    assert_eq!(
        f(None, "Mar  5 10:11:12", NOW_2026_06).as_deref(),
        Ok("2026-03-05T10:11:12Z")
    );
    assert_eq!(
        f(None, "Dec 31 23:59:59", NOW_2026_01).as_deref(),
        Ok("2025-12-31T23:59:59Z")
    );
    assert_eq!(
        f(None, "Jan  1 00:00:00", NOW_2025_12).as_deref(),
        Ok("2026-01-01T00:00:00Z")
    );
    assert_eq!(
        f(None, "Dec 31 23:59:59", NOW_2025_12).as_deref(),
        Ok("2025-12-31T23:59:59Z")
    );
    // Feb 29 of year 0 plus 2026 years is normalised to Mar 1, as AddDate does.
    assert_eq!(
        f(None, "Feb 29 12:00:00", NOW_2026_06).as_deref(),
        Ok("2026-03-01T12:00:00Z")
    );
    assert_eq!(
        f(Some("Europe/Paris"), "Jul  5 10:11:12", NOW_2026_06).as_deref(),
        Ok("2026-07-05T08:11:12Z")
    );
    assert_eq!(
        f(Some("America/New_York"), "Dec 31 23:30:00", NOW_2026_01).as_deref(),
        Ok("2026-01-01T04:30:00Z")
    );
    let g = Format::new("Jan _2 15:04:05 MST", None).unwrap();
    // A fabricated GMT+3 zone shows Dec 31 23:30 UTC as year 1: "contains the year".
    assert!(g.parse_time("Dec 31 23:30:00 GMT+3", NOW_2026_06).is_err());
    assert!(g.parse_time("Dec 31 23:30:00 GMT-3", NOW_2026_06).is_ok());
    // No token at all: Jan 1 of the current year.
    let h = Format::new("hello", None).unwrap();
    assert_eq!(h.parse("hello", NOW_2026_06), Ok(1_767_225_600_000_000_000));
    assert!(h.parse("hello!", NOW_2026_06).is_err());
}

#[test]
fn config_validation() {
    assert!(Format::new("", None).is_err());
    assert!(TimestampParser::new::<&str>("", &[], None).is_err());
    assert!(TimestampParser::new::<&str>("Unix", &[], Some("Nowhere/Land")).is_err());
    assert!(TimestampParser::new::<&str>("anything at all", &[], Some("")).is_ok());
    let p = TimestampParser::new("2006-01-02", &["Unix", ""], Some("UTC")).unwrap();
    assert_eq!(p.parse("2024-03-05", 0), Ok(1_709_596_800_000_000_000));
    assert_eq!(p.parse("1700000000", 0), Ok(1_700_000_000_000_000_000));
    assert_eq!(p.parse("", NOW_2026_06), Ok(1_767_225_600_000_000_000));
    assert!(p.parse("garbage", 0).is_err());
    assert!(load_location("Local").is_ok());
    assert!(load_location("../x").is_err());
}

#[test]
fn format_api() {
    let tz = load_location("America/New_York").unwrap();
    let ns = 1_709_633_472_345_000_000; // 2024-03-05T10:11:12.345Z
    assert_eq!(
        format(ns, "Mon Jan _2 15:04:05.000 MST 2006 Z07:00", &tz),
        "Tue Mar  5 05:11:12.345 EST 2024 -05:00"
    );
    assert_eq!(
        format(ns, RFC3339_NANO, &jiff::tz::TimeZone::UTC),
        "2024-03-05T10:11:12.345Z"
    );
    assert_eq!(
        format(ns, "002 __2 pm PM 3 03", &jiff::tz::TimeZone::UTC),
        "065  65 am AM 10 10"
    );
    let fixed = jiff::tz::TimeZone::fixed(jiff::tz::offset(5));
    assert_eq!(format(ns, "15:04 -07:00", &fixed), "15:11 +05:00");
    // A layout with no tokens is echoed; huge layouts are fine.
    assert_eq!(format(ns, "plain", &tz), "plain");
    let big = "x".repeat(1 << 20);
    assert_eq!(format(ns, &big, &tz).len(), 1 << 20);
}

#[test]
fn locations_round_trip() {
    for name in [
        "Europe/Paris",
        "posix/Asia/Tokyo",
        "UTC",
        "",
        "Local",
        "Etc/GMT-14",
    ] {
        let tz = load_location(name).unwrap();
        let loc = Location::from_time_zone(&tz);
        let t = GoTime::from_unix(1_720_000_000, 0);
        let direct = format_in(t, "15:04 MST -07:00", &Location::load(name).unwrap());
        assert_eq!(format_in(t, "15:04 MST -07:00", &loc), direct, "{name}");
    }
}

#[test]
fn jiff_zones_without_tzif_data() {
    let tz = jiff::tz::TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap();
    let loc = Location::from_time_zone(&tz);
    let july = GoTime::from_unix(1_720_000_000, 0); // 2024-07-03T09:46:40Z
    assert_eq!(
        format_in(july, "15:04 MST -07:00", &loc),
        "05:46 EDT -04:00"
    );
    let jan = GoTime::from_unix(1_704_067_200, 0);
    assert_eq!(format_in(jan, "15:04 MST -07:00", &loc), "19:00 EST -05:00");
    let t = parse_layout(
        "2006-01-02 15:04:05 MST",
        "2024-07-03 05:46:40 EDT",
        Some(&loc),
    )
    .unwrap();
    assert_eq!(t, july);
}
